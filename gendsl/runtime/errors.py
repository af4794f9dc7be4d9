"""What only a run can meet, as a diagnostic: a distribution's parameter outside its domain (a
negative scale from `|> tanh`, say). The CLI and the Python API report it the same way."""

from __future__ import annotations

import traceback
from contextlib import contextmanager

from gendsl.diagnostics import Diagnostic, GendslError, error


def out_of_domain(exc: BaseException) -> Diagnostic | None:
    """E412 for an error that torch.distributions raised on its parameters' values, else None."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not isinstance(exc, (RuntimeError, ValueError)) or not any(
            "torch/distributions" in f.filename.replace("\\", "/") for f in frames):
        return None
    return error("E412", f"a distribution's parameter left its domain while the model ran: {exc}",
                 hint="make scales positive (end them with `|> softplus` or `exp(...)`) and probs lie in "
                      "[0, 1] (`|> sigmoid`), or give logits")


@contextmanager
def run_time_diagnostics():
    """Raise GendslError (E412) in place of a distribution's domain error."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        found = out_of_domain(exc)
        if found is None:
            raise
        raise GendslError(found) from None
