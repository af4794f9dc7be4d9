"""The run folder: what `gendsl train` writes and `sample` / `evaluate` read.

    RUN/model.py        the generated model (standalone PyTorch; SPEC says how to train it)
    RUN/run.json        spec path, --set values, hash, device, status
    RUN/checkpoint.pt   the last good checkpoint (atomic; weights_only loading)
    RUN/metrics.csv     logged losses; RUN/tensorboard/ the same for TensorBoard
    RUN/samples/        sample grids (PNG) during and after training; RUN/losses.png
    RUN/diagram.svg     the compute view of the spec
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from pathlib import Path

from gendsl.codegen import generate, load_generated
from gendsl.diagnostics import GendslError, error


@dataclass
class Run:
    folder: Path
    module: types.ModuleType
    info: dict

    @property
    def spec(self) -> dict:
        return self.module.SPEC


def compile_spec(spec_path: str, overrides: list[str], model: str | None):
    """Check and generate; raises GendslError with the spec's diagnostics when it has errors."""
    from gendsl.graph.check import check_file

    checked = check_file(spec_path, overrides, model)
    if not checked.ok:
        exc = GendslError(checked.diagnostics)
        exc.sources = checked.sources
        raise exc
    text = checked.sources[str(Path(spec_path).resolve())].text if str(Path(spec_path).resolve()) in checked.sources \
        else Path(spec_path).read_text(encoding="utf-8")
    return checked, generate(checked.graph, spec_path, text)


def create(folder: Path, spec_path: str, overrides: list[str], model: str | None,
           write: bool = True) -> tuple[Run, object]:
    """Compile a spec into a run folder (model.py, run.json); returns the run and the checked spec.
    With write=False (the other processes of a distributed run) nothing is written."""
    checked, generated = compile_spec(spec_path, overrides, model)
    info = {"spec": str(spec_path), "set": list(overrides), "model": generated.spec["model"],
            "hash": generated.spec["hash"], "status": "created"}
    if not write:
        return Run(folder, load_generated(generated.source, "gendsl_run"), info), checked
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.py").write_text(generated.source, encoding="utf-8")
    except OSError as exc:
        raise GendslError(error("E502", f"cannot write the run folder {folder}: {exc.strerror}",
                                hint="choose a writable --out folder")) from None
    write_info(folder, info)
    return Run(folder, load_generated(generated.source, "gendsl_run"), info), checked


def write_info(folder: Path, info: dict) -> None:
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def open_run(folder: Path) -> Run:
    """A trained run: its generated model and run.json (the model runs from model.py)."""
    model_file, info_file = folder / "model.py", folder / "run.json"
    if not folder.is_dir() or not model_file.exists():
        raise GendslError(error("E504", f"{folder} is not a gendsl run folder (no model.py)",
                                hint="pass the --out folder of `gendsl train` (default runs/SPEC_NAME)"))
    try:
        info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.exists() else {}
        module = load_generated(model_file.read_text(encoding="utf-8"), "gendsl_run")
    except Exception as exc:  # a hand-edited model.py or run.json: report, never a traceback
        raise GendslError(error("E504", f"cannot load {folder}: {type(exc).__name__}: {exc}",
                                hint="model.py and run.json are written by gendsl train; retrain to recreate them"))
    if not hasattr(module, "SPEC") or not hasattr(module, "build"):
        raise GendslError(error("E504", f"{model_file} is not a gendsl model (no SPEC / build)",
                                hint="retrain to recreate it"))
    return Run(folder, module, info)
