"""Run-time data sources: the arrays of one split (train, valid or test) of a named source.

`load(source, args, split)` looks the source up in the data-source registry
(gendsl/library/sources.py, whose entries name their loaders here), checks `args` against the
loader's signature and returns a tuple of numpy arrays that all have the same number of rows.

Splits:
- File sources with a split of their own use it (binarized_mnist.npz; npz files with `train`/
  `valid`/`test` keys or `<key>_<split>` keys).
- Every other file source uses the fixed permutation rule: a numpy Generator seeded with 0
  permutes the N rows once; n_valid = N // 10, n_test = N // 10, n_train = N - n_valid - n_test;
  the first n_train permuted rows are train, the next n_valid valid and the last n_test test.
- Synthetic sources (ring, grid, moons, circles, swiss_roll) draw `n` rows (default 20000) for
  train and n // 4 for valid and for test. Each split has its own seed derived from the split
  index and a CRC32 of the source name (not Python's per-process randomized `hash`), so the
  splits are independent draws and identical on every run.

Errors are DataError(code, message, hint): E401 file not found, E402 file unreadable or in the
wrong format, E403 wrong shape or size, E404 NaN or infinite values, E405 bad argument value.
Nothing here imports torch or prints.
"""

from __future__ import annotations

import inspect
import numbers
import zlib
from typing import Any, Callable

import numpy as np

from gendsl.diagnostics import did_you_mean
from gendsl.library import sources as _registry
from gendsl.library.entries import resolve_runtime

SPLITS = ("train", "valid", "test")
DEFAULT_N = 20000


class DataError(Exception):
    """A data problem the user can fix: E4xx code, self-contained message, and a hint."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint


def check_arrays(source: str, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Validate one source's named arrays (rows, finite values, equal lengths); return them as a tuple."""
    for name, array in arrays.items():
        _check_has_rows(source, name, array)
        _check_finite(source, name, array)
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        found = ", ".join(f"'{name}' has {n}" for name, n in lengths.items())
        raise DataError("E403", f"{source}: arrays must have the same number of rows, but {found}",
                        "make every array of the source describe the same examples, one per row")
    return tuple(arrays.values())


def _check_has_rows(source: str, name: str, array: np.ndarray) -> None:
    if array.ndim == 0 or len(array) == 0:
        found = "a scalar" if array.ndim == 0 else f"shape {array.shape}"
        raise DataError("E403", f"{source}: array '{name}' must have at least one row, found {found}",
                        "store examples along the first axis, shape (N, ...) with N >= 1")


def _check_finite(source: str, name: str, array: np.ndarray) -> None:
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    bad_rows = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    raise DataError("E404", f"{source}: array '{name}' has NaN or infinite values in {len(bad_rows)} "
                            f"of {len(array)} rows (first at row {bad_rows[0]})",
                    "remove or impute those rows before training; values too large for float32 "
                    "also become infinite")


def require_int(source: str, name: str, value: Any, minimum: int) -> int:
    """`value` as an int >= minimum, else E405 (integral floats such as 2e4 are accepted)."""
    is_integral_float = isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) or is_integral_float):
        raise DataError("E405", f"{source}: argument '{name}' must be an integer, found {value!r}",
                        f"write {name}={max(minimum, 1)} or another whole number")
    if int(value) < minimum:
        raise DataError("E405", f"{source}: argument '{name}' must be at least {minimum}, found {value!r}",
                        f"use {name} >= {minimum}")
    return int(value)


def require_float(source: str, name: str, value: Any, *, positive: bool = False) -> float:
    """`value` as a finite float that is >= 0 (or > 0 when positive), else E405."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise DataError("E405", f"{source}: argument '{name}' must be a number, found {value!r}",
                        f"write {name}=0.5 or another finite number")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "at least 0"
        raise DataError("E405", f"{source}: argument '{name}' must be {bound}, found {value!r}",
                        f"use a {'positive' if positive else 'non-negative'} {name}")
    return float(value)


SOURCES = _registry.SOURCES


# Supplied by load itself, never by the user.
_RESERVED = frozenset({"seed", "split"})


def load(source: str, args: dict[str, Any], split: str) -> tuple[np.ndarray, ...]:
    """The validated arrays of `split` of data source `source` called with keyword `args`."""
    _check_split(split)
    loader = _lookup(source)
    kwargs = dict(args)
    _check_arguments(source, loader, kwargs)
    if "synthetic" in SOURCES[source].tags:
        return _load_synthetic(source, loader, kwargs, split)
    return loader(**kwargs, split=split)


def accepted_arguments(source: str) -> list[str]:
    """The keyword arguments a source accepts in a spec (for messages and completion)."""
    params = inspect.signature(_lookup(source)).parameters
    return [name for name, p in params.items()
            if name not in _RESERVED and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def split_seed(source: str, split: str) -> int:
    """The fixed seed of one split of a synthetic source: stable across runs and machines."""
    entropy = [zlib.crc32(source.encode("utf-8")), SPLITS.index(split)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _check_split(split: str) -> None:
    if split not in SPLITS:
        hint = did_you_mean(str(split), SPLITS) or f"use one of {', '.join(SPLITS)}"
        raise DataError("E405", f"unknown split {split!r}; expected one of {', '.join(SPLITS)}", hint)


def _lookup(source: str) -> Callable[..., tuple[np.ndarray, ...]]:
    """The loader of a registered source."""
    if source not in SOURCES:
        hint = did_you_mean(str(source), SOURCES) or f"known sources: {', '.join(SOURCES)}"
        raise DataError("E405", f"unknown data source {source!r}", hint)
    return resolve_runtime(SOURCES[source].runtime)


def _check_arguments(source: str, loader: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    accepted = accepted_arguments(source)
    listing = ", ".join(accepted) if accepted else "none"
    for name in kwargs:
        if name not in accepted:
            hint = did_you_mean(str(name), accepted) or f"{source} accepts: {listing}"
            raise DataError("E405", f"{source} has no argument {name!r}; it accepts: {listing}", hint)
    if "synthetic" in SOURCES[source].tags:
        return  # n has a default here and the seed is supplied by load
    params = inspect.signature(loader).parameters
    for name in accepted:
        if params[name].default is inspect.Parameter.empty and name not in kwargs:
            raise DataError("E405", f"{source} needs argument '{name}', which was not given",
                            f"add {name}=... to the data source")


def _load_synthetic(source: str, sampler: Callable[..., tuple[np.ndarray, ...]],
                    kwargs: dict[str, Any], split: str) -> tuple[np.ndarray, ...]:
    # n >= 4 so that valid and test (n // 4 rows each) are never empty.
    n = require_int(source, "n", kwargs.pop("n", DEFAULT_N), minimum=4)
    rows = n if split == "train" else n // 4
    return sampler(rows, split_seed(source, split), **kwargs)


__all__ = ["SPLITS", "SOURCES", "DataError", "load", "accepted_arguments", "split_seed", "check_arrays"]
