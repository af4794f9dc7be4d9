"""The run folder: what `gendsl train` writes and `sample` / `evaluate` read.

    RUN/model.py        the generated model (standalone PyTorch; SPEC says how to train it)
    RUN/run.json        spec path, --set values, hash, device, status (and the MLflow run, with --mlflow)
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
from gendsl.spec import RunSpec, read_spec


@dataclass
class Run:
    folder: Path
    module: types.ModuleType
    info: dict
    spec: RunSpec


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
           write: bool = True, resume: bool = False) -> tuple[Run, object]:
    """Compile a spec into a run folder (model.py, run.json); returns the run and the checked spec.
    With write=False (the other processes of a distributed run) nothing is written. A resumed
    run keeps its run.json (status, rounds done) until training moves it on."""
    checked, generated = compile_spec(spec_path, overrides, model)
    info = {"spec": str(spec_path), "set": list(overrides), "model": generated.spec.model,
            "hash": generated.spec.hash, "status": "created"}
    if generated.spec.plugins:  # informative: model.py's SPEC is what `train --resume` reads
        info["plugins"] = list(generated.spec.plugins)
    if resume and (folder / "run.json").exists():
        info = {**read_info(folder), **{k: v for k, v in info.items() if k != "status"}}
    if not write:
        return Run(folder, load_generated(generated.source, "gendsl_run"), info, generated.spec), checked
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.py").write_text(generated.source, encoding="utf-8")
    except OSError as exc:
        raise GendslError(error("E502", f"cannot write the run folder {folder}: {exc.strerror}",
                                hint="choose a writable --out folder")) from None
    write_info(folder, info)
    return Run(folder, load_generated(generated.source, "gendsl_run"), info, generated.spec), checked


def write_info(folder: Path, info: dict) -> None:
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_info(folder: Path) -> dict:
    """run.json of a run folder ({} when it is missing or not JSON: it is informative only)."""
    try:
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def open_run(folder: Path) -> Run:
    """A trained run: its generated model and run.json (the model runs from model.py)."""
    model_file = folder / "model.py"
    if not folder.is_dir() or not model_file.exists():
        raise GendslError(error("E504", f"{folder} is not a gendsl run folder (no model.py)",
                                hint="pass the --out folder of `gendsl train` (default runs/SPEC_NAME)"))
    info = read_info(folder)
    try:
        module = load_generated(model_file.read_text(encoding="utf-8"), "gendsl_run")
    except Exception as exc:  # a hand-edited model.py or run.json: report, never a traceback
        raise GendslError(error("E504", f"cannot load {folder}: {type(exc).__name__}: {exc}",
                                hint="model.py and run.json are written by gendsl train; retrain to recreate them"))
    if not hasattr(module, "SPEC") or not hasattr(module, "build"):
        raise GendslError(error("E504", f"{model_file} is not a gendsl model (no SPEC / build)",
                                hint="retrain to recreate it"))
    try:
        spec = read_spec(module.SPEC)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise GendslError(error("E504", f"{model_file} was written by another version of gendsl: "
                                f"{str(exc).splitlines()[0]}", hint="retrain to recreate it with this version"))
    return Run(folder, module, info, spec)


def load_trained(folder: Path, device_name: str, best: bool = False):
    """(run, model on device, device) with the checkpoint's weights (its EMA when there is one);
    best: those of best.pt, the lowest valid loss of the run."""
    from gendsl.runtime import checkpoint
    from gendsl.runtime.loop import pick_device

    run = open_run(folder)
    device = pick_device(device_name)
    if best and not (folder / "best.pt").exists():
        raise GendslError(error("E408", f"--best: {folder} has no best.pt",
                                hint="best.pt is written when training validates (validate_every > 0, the "
                                     "default); use the last weights (leave out --best)"))
    state = checkpoint.load(folder / ("best.pt" if best else "checkpoint.pt"), run.spec.hash, device)
    model = run.module.build().to(device)
    if state.get("ema"):
        model.load_state_dict({k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")})
    else:
        model.load_state_dict(state["model"])
    return run, model.eval(), device
