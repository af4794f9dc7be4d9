"""File-backed data sources: binarized MNIST, IDX files, scikit-learn digits, paired MNIST,
generic npz/npy arrays and folders of images.

Fixed permutation rule, for sources without a split of their own (mnist_idx, digits,
paired_mnist, npy, npz without split keys, image_folder): a numpy Generator seeded with 0
permutes the N rows once; n_valid = N // 10 and n_test = N // 10 (integer division) and
n_train = N - n_valid - n_test; the first n_train permuted rows are train, the next n_valid
valid and the last n_test test. A file therefore always splits the same way, on every machine.

Dtypes: integer arrays become int64 and floating (or boolean) arrays float32; images are float32
in [0, 1]. Explicit paths are used as given (after expanding `~`); default files are found by
default_data_path. Every loader returns validated arrays (finite, equal row counts).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gendsl.data import SPLITS, DataError, check_arrays, require_int

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GZIP_MAGIC = b"\x1f\x8b"


def default_data_path(filename: str) -> Path:
    """The first existing of $GENDSL_DATA_DIR/f, ./../shared/data/f and <repo>/../shared/data/f."""
    candidates = []
    if os.environ.get("GENDSL_DATA_DIR"):
        candidates.append(Path(os.environ["GENDSL_DATA_DIR"]).expanduser() / filename)
    candidates.append(Path.cwd().parent / "shared" / "data" / filename)
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "data" / filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataError("E401", f"data file '{filename}' not found; looked in: {looked}",
                    f"pass path=\"...\" to the data source, or set GENDSL_DATA_DIR to the folder "
                    f"that holds {filename}")


def binarized_mnist(path: str | None = None, *, split: str = "train") -> tuple[np.ndarray]:
    """Binarized MNIST (Larochelle & Murray split): float32 (N, 784) in {0, 1}."""
    file = _data_file("binarized_mnist", path, "binarized_mnist.npz")
    with _open_npz("binarized_mnist", file) as archive:
        # Kept as stored (uint8): widening 39M pixels to int64 first would cost ~300 MB.
        pixels = _member("binarized_mnist", file, archive, split, standardize=False)
    _require_shape("binarized_mnist", f"'{split}' in {file}", pixels, (None, 784))
    _require_binary("binarized_mnist", f"'{split}' in {file}", pixels)
    return check_arrays("binarized_mnist", {"x": pixels.astype(np.float32)})  # type: ignore[return-value]


def mnist_idx(images: str | None = None, labels: str | None = None, *,
              split: str = "train") -> tuple[np.ndarray, ...]:
    """Images (N, H, W) float32 in [0, 1] from IDX files (gzip or plain), with int64 labels if given.

    With no `images`, the 10k grayscale MNIST test digits and their labels in the shared data.
    """
    if images is None:
        images = str(default_data_path("mnist_t10k-images-idx3-ubyte.gz"))
        labels = labels or str(default_data_path("mnist_t10k-labels-idx1-ubyte.gz"))
    pixels = _read_idx_images("mnist_idx", _explicit_file("mnist_idx", images))
    arrays = {"images": pixels.astype(np.float32) / 255.0}
    if labels is not None:
        file = _explicit_file("mnist_idx", labels)
        arrays["labels"] = _read_idx_labels("mnist_idx", file, len(pixels))
    return split_rows("mnist_idx", arrays, split)


def digits(classes: list[int] | None = None, binarize: bool = False, categorical: bool = False, *,
           split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits: images float32 (N, 8, 8) in [0, 1] (int64 levels 0..16
    when categorical), labels int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    if classes is not None:
        keep = np.isin(labels, _digit_classes(classes))
        images, labels = images[keep], labels[keep]
    if not isinstance(binarize, bool):
        raise DataError("E405", f"digits: argument 'binarize' must be true or false, found {binarize!r}",
                        "write binarize=true or binarize=false")
    if binarize:
        images = (images > 0.5).astype(np.float32)
    if categorical is True:  # the same rows and split, each pixel its level k of k/16
        images = np.rint(images * 16).astype(np.int64)
    return split_rows("digits", {"images": images, "labels": labels}, split)  # type: ignore[return-value]


def paired_mnist(path: str | None = None, images: str | None = None, *,
                 split: str = "train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paired MNIST test images: binary (N, 28, 28), grayscale (N, 28, 28) in [0, 1], labels."""
    file = _data_file("paired_mnist", path, "binarized_mnist.npz")
    with _open_npz("paired_mnist", file) as archive:
        binary = _member("paired_mnist", file, archive, "test", standardize=False)
        labels = _member("paired_mnist", file, archive, "test_labels")
        source_index = _member("paired_mnist", file, archive, "test_source_index")
    _require_shape("paired_mnist", f"'test' in {file}", binary, (None, 784))
    gray_file = _data_file("paired_mnist", images, "mnist_t10k-images-idx3-ubyte.gz")
    gray = _read_idx_images("paired_mnist", gray_file)
    _require_shape("paired_mnist", str(gray_file), gray, (None, 28, 28))
    _require_binary("paired_mnist", f"'test' in {file}", binary)
    _check_source_index(file, source_index, len(binary), len(gray))
    arrays = {"binary": binary.reshape(-1, 28, 28).astype(np.float32),
              "grayscale": gray[source_index].astype(np.float32) / 255.0,
              "labels": labels}
    return split_rows("paired_mnist", arrays, split)  # type: ignore[return-value]


def npz(path: str, keys: list[str] | None = None, *, split: str = "train") -> tuple[np.ndarray, ...]:
    """Arrays from an .npz archive: split keys, `<key>_<split>` keys, or the permutation rule."""
    file = _explicit_file("npz", path)
    chosen = _key_list(keys)
    with _open_npz("npz", file) as archive:
        names = list(archive.files)
        if chosen is None and any(name in SPLITS for name in names):
            return check_arrays("npz", {split: _member("npz", file, archive, split)})
        bases = _split_key_bases(names)
        if bases:
            wanted = chosen or bases
            return check_arrays("npz", {k: _member("npz", file, archive, f"{k}_{split}") for k in wanted})
        arrays = {k: _member("npz", file, archive, k) for k in (chosen or names)}
    return split_rows("npz", arrays, split)


def npy(path: str, *, split: str = "train") -> tuple[np.ndarray]:
    """One array from an .npy file, split by the fixed permutation rule."""
    file = _explicit_file("npy", path)
    try:
        array = np.load(file, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for a corrupt file
        raise _unreadable("npy", file, "a .npy array", exc) from exc
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError("E402", f"npy: {file} is an .npz archive, not a single .npy array",
                        "use the npz data source for .npz files")
    return split_rows("npy", {"x": _standard_dtype("npy", file, "array", array)}, split)  # type: ignore[return-value]


def image_folder(path: str, size: int | list[int] | None = None, grayscale: bool = True, *,
                 split: str = "train") -> tuple[np.ndarray, ...]:
    """PNG/JPEG images (N, C, H, W) float32 in [0, 1]; one class per subfolder gives int64 labels."""
    target = _target_size(size)
    if not isinstance(grayscale, bool):
        raise DataError("E405", f"image_folder: argument 'grayscale' must be true or false, found "
                                f"{grayscale!r}", "write grayscale=true or grayscale=false")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError("E401", f"image_folder: folder {folder} not found",
                        "pass the folder that holds the images (or one subfolder per class)")
    files, labels = _image_files_and_labels(folder)
    _check_image_sizes(files, target)
    keep = split_indices("image_folder", len(files), split)
    images = np.stack([_read_image(files[i], target, grayscale) for i in keep])
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = labels[keep]
    return check_arrays("image_folder", arrays)


def split_indices(source: str, n: int, split: str) -> np.ndarray:
    """Row indices of `split` under the fixed permutation rule (see the module docstring)."""
    order = np.random.default_rng(0).permutation(n)
    n_valid = n_test = n // 10
    n_train = n - n_valid - n_test
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid),
              "test": (n_train + n_valid, n)}
    start, stop = bounds[split]
    if stop == start:
        raise DataError("E403", f"{source}: {n} rows are too few for a '{split}' split; the fixed "
                                "split gives 10% each to valid and test, so it needs at least 10 rows",
                        "add more examples, or provide your own train/valid/test split in an npz file")
    return order[start:stop]


def split_rows(source: str, arrays: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, ...]:
    """Validate arrays of equal length and keep the rows of `split` under the permutation rule."""
    check_arrays(source, arrays)
    keep = split_indices(source, len(next(iter(arrays.values()))), split)
    return tuple(array[keep] for array in arrays.values())


def read_idx(source: str, file: Path) -> np.ndarray:
    """The array in an IDX file (LeCun's format), gzip-compressed or plain, detected by magic bytes."""
    raw = file.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise _unreadable(source, file, "a gzip-compressed IDX file", exc) from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        found = " ".join(f"{b:02x}" for b in raw[:4])
        raise DataError("E402", f"{source}: {file} is not an IDX file: bad magic number, expected bytes "
                                f"'00 00 <type 08-0e> <ndim>', found '{found}'",
                        "pass an MNIST-style IDX file such as t10k-images-idx3-ubyte(.gz)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header]) if len(raw) >= header else ()
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(shape) != ndim or len(raw) - header != expected:
        raise DataError("E403", f"{source}: IDX file {file} declares shape {shape} ({expected} data "
                                f"bytes) but holds {max(len(raw) - header, 0)} data bytes",
                        "the file is truncated or corrupt; obtain a fresh copy")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _read_idx_images(source: str, file: Path) -> np.ndarray:
    pixels = read_idx(source, file)
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise DataError("E403", f"{source}: {file} must hold unsigned-byte images (N, H, W), found "
                                f"{pixels.dtype} array of shape {pixels.shape}",
                        "pass the images file (idx3-ubyte), not the labels file")
    return pixels


def _read_idx_labels(source: str, file: Path, n_images: int) -> np.ndarray:
    labels = read_idx(source, file)
    if labels.dtype.kind not in "iu" or labels.shape != (n_images,):
        raise DataError("E403", f"{source}: {file} must hold {n_images} integer labels, one per image, "
                                f"found {labels.dtype} array of shape {labels.shape}",
                        "pass the labels file (idx1-ubyte) that belongs to the images")
    return labels.astype(np.int64)


def _data_file(source: str, path: str | None, default_name: str) -> Path:
    return default_data_path(default_name) if path is None else _explicit_file(source, path)


def _explicit_file(source: str, path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise DataError("E405", f"{source}: a file path must be a string, found {path!r}",
                        'write path="data/file.npz"')
    file = Path(path).expanduser()
    if not file.exists():
        raise DataError("E401", f"{source}: file {file} not found (current directory: {Path.cwd()})",
                        "check the path; relative paths are resolved from the current directory")
    if not file.is_file():
        raise DataError("E402", f"{source}: {file} is a folder, expected a file",
                        "pass the path of the file itself")
    return file


def _open_npz(source: str, file: Path) -> Any:
    try:
        archive = np.load(file, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for a corrupt file
        raise _unreadable(source, file, "an .npz archive", exc) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError("E402", f"{source}: {file} is a single .npy array, expected an .npz archive",
                        "use the npy data source for .npy files")
    return archive


def _member(source: str, file: Path, archive: Any, key: str,
            standardize: bool = True) -> np.ndarray:
    if key not in archive.files:
        raise DataError("E402", f"{source}: {file} has no array '{key}'; it has: "
                                f"{', '.join(archive.files) or 'no arrays'}",
                        "check the keys argument and the file (np.load(path).files lists its keys)")
    try:
        array = archive[key]
    except (ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _unreadable(source, file, f"an .npz archive with a readable '{key}'", exc) from exc
    return _standard_dtype(source, file, key, array) if standardize else array


def _standard_dtype(source: str, file: Path, key: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind in "fb":
        # Out-of-range float64 values become inf here and are reported by check_arrays (E404).
        with np.errstate(over="ignore", invalid="ignore"):
            return array.astype(np.float32)
    raise DataError("E402", f"{source}: array '{key}' in {file} has dtype {array.dtype}; expected "
                            "integer, floating or boolean values", "convert the array to numbers")


def _unreadable(source: str, file: Path, expected: str, exc: Exception) -> DataError:
    return DataError("E402", f"{source}: could not read {file} as {expected}: {exc}",
                     "check that the file is complete and in the expected format")


def _require_shape(source: str, what: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    fits = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not fits:
        wanted = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataError("E403", f"{source}: {what} must have shape {wanted}, found {array.shape}",
                        "pass a file in the documented format of this source")


def _require_binary(source: str, what: str, array: np.ndarray) -> None:
    if not ((array == 0) | (array == 1)).all():
        raise DataError("E402", f"{source}: {what} must hold only 0 and 1, found values in "
                                f"[{array.min()}, {array.max()}]",
                        "binarize the images first, or load non-binary arrays with the npz source")


def _check_source_index(file: Path, index: np.ndarray, n_pairs: int, n_gray: int) -> None:
    in_range = index.ndim == 1 and len(index) == n_pairs and n_pairs > 0 and \
        index.dtype.kind in "iu" and 0 <= index.min() and index.max() < n_gray
    if not in_range:
        raise DataError("E403", f"paired_mnist: 'test_source_index' in {file} must hold {n_pairs} "
                                f"integer indices in [0, {n_gray}), found {index.dtype} array of shape "
                                f"{index.shape}",
                        "pass the grayscale images the binarized test set was made from (images=...)")


def _split_key_bases(names: list[str]) -> list[str]:
    bases: list[str] = []
    for name in names:
        for split in SPLITS:
            base = name[: -len(split) - 1]
            if name.endswith(f"_{split}") and base and base not in bases:
                bases.append(base)
    return bases


def _key_list(keys: Any) -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, (list, tuple)) or not keys or not all(isinstance(k, str) for k in keys):
        raise DataError("E405", f"npz: argument 'keys' must be a non-empty list of names, found {keys!r}",
                        'write keys=["x", "y"]')
    return list(keys)


def _digit_classes(classes: Any) -> list[int]:
    if not isinstance(classes, (list, tuple)) or not classes:
        raise DataError("E405", f"digits: argument 'classes' must be a non-empty list of digits, "
                                f"found {classes!r}", "write classes=[0, 1]")
    chosen = [require_int("digits", "classes", c, minimum=0) for c in classes]
    unknown = [c for c in chosen if c > 9]
    if unknown:
        raise DataError("E405", f"digits: unknown class {unknown[0]}; digits has classes 0 to 9",
                        "choose classes among 0, 1, ..., 9")
    return chosen


def _image_files_and_labels(folder: Path) -> tuple[list[Path], np.ndarray | None]:
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        files, labels = _image_files(folder), None
    else:
        per_class = [_image_files(d) for d in classes]
        files = [f for found in per_class for f in found]
        labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(f) for f in per_class])
    if not files:
        raise DataError("E401", f"image_folder: no PNG or JPEG images found in {folder}",
                        "put .png/.jpg files in the folder, or in one subfolder per class")
    return files, labels


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES)


def _target_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return (require_int("image_folder", "size", size[0], minimum=1),
                require_int("image_folder", "size", size[1], minimum=1))
    if isinstance(size, (list, tuple)):
        raise DataError("E405", f"image_folder: argument 'size' must be one number or [height, width], "
                                f"found {size!r}", "write size=28 or size=[28, 28]")
    side = require_int("image_folder", "size", size, minimum=1)
    return side, side


def _check_image_sizes(files: list[Path], target: tuple[int, int] | None) -> None:
    # Header-only reads, so every file is checked even though only one split is decoded.
    from PIL import Image

    first: tuple[Path, tuple[int, int]] | None = None
    for file in files:
        try:
            with Image.open(file) as image:
                height_width = (image.height, image.width)
        except Exception as exc:  # PIL raises many types for a corrupt image
            raise _unreadable("image_folder", file, "a PNG or JPEG image", exc) from exc
        if target is None and first is not None and height_width != first[1]:
            raise DataError("E403", f"image_folder: {file} is {height_width[0]}x{height_width[1]} "
                                    f"(height x width) but {first[0]} is {first[1][0]}x{first[1][1]}; "
                                    "all images must share a size",
                            f"pass size={first[1][0]} or size=[height, width] to resize every image")
        first = first or (file, height_width)


def _read_image(file: Path, target: tuple[int, int] | None, grayscale: bool) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as image:
            image = image.convert("L" if grayscale else "RGB")
            if target is not None and (image.height, image.width) != target:
                image = image.resize((target[1], target[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except Exception as exc:  # PIL raises many types for a corrupt image
        raise _unreadable("image_folder", file, "a PNG or JPEG image", exc) from exc
    return pixels[None] if grayscale else pixels.transpose(2, 0, 1)
