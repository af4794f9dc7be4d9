"""gendsl: a declarative language for deep generative models.

The Python API is the CLI's: each function below does what the command of the same name does,
raising `GendslError` (with `.diagnostics`) where the command would print diagnostics and exit 1.
Importing gendsl imports neither torch nor numpy; train, sample and evaluate load them.

    import gendsl
    checked = gendsl.check("specs/vae.gen", set=["beta=4"])     # graph + diagnostics
    gendsl.render("specs/vae.gen", "vae.svg")                    # the diagram
    source = gendsl.compile("specs/vae.gen")                     # standalone PyTorch source
    run = gendsl.train("specs/vae.gen", out="runs/vae", epochs=1)
    model = gendsl.load("runs/vae")                              # the trained nn.Module
    gendsl.sample("runs/vae", "grid.png", n=64)
    metrics = gendsl.evaluate("runs/vae", ["elbo", "nll"], k=100)
"""

from __future__ import annotations

from pathlib import Path

from gendsl.diagnostics import Diagnostic, GendslError

__all__ = ["Diagnostic", "GendslError", "check", "render", "compile", "train", "load", "sample", "evaluate"]
__version__ = "0.1.0"


def check(path: str | Path, set: list[str] = (), model: str | None = None):
    """Parse and check a spec: a `Checked` with `.ok`, `.graph` and `.diagnostics` (never raises)."""
    from gendsl.graph.check import check_file

    return check_file(path, list(set), model)


def _checked(path, set, model):
    checked = check(path, set, model)
    if not checked.ok:
        raise GendslError(checked.diagnostics)
    return checked


def render(path: str | Path, out: str | Path, view: str = "compute", set: list[str] = (),
           model: str | None = None) -> list[Path]:
    """Draw a spec to OUT (.svg, .png, .pdf or .dot); returns the files written."""
    from gendsl.diagram import render_file

    written, notes = render_file(_checked(path, set, model).graph, Path(out), view)
    if any(d.is_error for d in notes):
        raise GendslError(notes)
    return written


def compile(path: str | Path, set: list[str] = (), model: str | None = None) -> str:  # noqa: A001
    """The generated PyTorch source of a spec (what `gendsl compile` writes)."""
    from gendsl.runtime.run import compile_spec

    return compile_spec(str(path), list(set), model)[1].source


def train(path: str | Path, out: str | Path | None = None, set: list[str] = (), model: str | None = None,
          **options) -> Path:
    """Train a spec into a run folder (default runs/SPEC_NAME); options as the CLI's flags:
    steps, epochs, seed, device, resume, amp, compile, quiet, log_every, checkpoint_every,
    sample_every, validate_every, patience, accumulate, and mlflow (a folder: also log to an MLflow
    file store there)."""
    from gendsl.runtime.errors import run_time_diagnostics
    from gendsl.runtime.loop import Options, Trainer
    from gendsl.runtime.run import create

    folder = Path(out or Path("runs") / Path(path).stem)
    run, _ = create(folder, str(path), list(set), model, resume=bool(options.get("resume")))
    with run_time_diagnostics():
        Trainer(run, Options(**{"quiet": True, **options})).fit()
    return folder


def load(run: str | Path, device: str = "cpu", best: bool = False):
    """The trained model of a run folder (EMA weights when the spec keeps an EMA), in eval mode;
    best=True: the weights of the lowest valid loss (best.pt) instead of the last ones."""
    from gendsl.runtime.run import load_trained

    return load_trained(Path(run), device, best)[1]


def sample(run: str | Path, out: str | Path, n: int | None = None, mean: bool = False, device: str = "cpu"):
    """Draw samples into a PNG (a grid, or a scatter plot for 2-D data); returns the path."""
    from gendsl.runtime.draw import held_out, write_samples
    from gendsl.runtime.errors import run_time_diagnostics
    from gendsl.runtime.run import load_trained

    trained, model, torch_device = load_trained(Path(run), device)
    with run_time_diagnostics():
        return write_samples(model, trained.spec, Path(out), held_out(trained.spec, torch_device), n, None, mean)


def evaluate(run: str | Path, metrics: list[str] = ("nll",), split: str = "valid", k: int = 5000,
             batch: int = 500, device: str = "cpu", samples: int | None = None) -> dict:
    """Held-out metrics by name (see `gendsl evaluate --help`), as a dict; samples: what --samples sets."""
    from gendsl.evaluation.metrics import Context, importance_samples, run_metric, sample_count
    from gendsl.runtime.draw import held_out
    from gendsl.runtime.errors import run_time_diagnostics
    from gendsl.runtime.run import load_trained

    trained, model, torch_device = load_trained(Path(run), device)
    context = Context(model, trained.spec, held_out(trained.spec, torch_device, split), batch, True)
    with run_time_diagnostics():
        return {name: run_metric(context, name, {**importance_samples(name, k), **sample_count(name, samples)})
                for name in metrics}
