"""An optional MLflow mirror of a training run (`gendsl train --mlflow [DIR]`): the params, the
rows of metrics.csv with their rounds as steps, the sample grids and the run folder's files as
artifacts, and how the run ended, in a local MLflow file store. mlflow is imported only here,
and only when asked for; metrics.csv stays the record that --resume trusts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from gendsl.diagnostics import Diagnostic, GendslError, error, warning

DEFAULT_STORE = "mlruns"  # what `mlflow ui` opens when started in the same folder
# run.json's status -> the MLflow run's; anything else ("running" after an internal error) is FAILED
STATUS = {"finished": "FINISHED", "stopped early": "FINISHED", "paused": "FINISHED", "interrupted": "KILLED",
          "failed": "FAILED"}
# the run folder's files logged when the run ends (the sample grids are logged as they are drawn)
ARTIFACTS = ("run.json", "checkpoint.pt", "best.pt", "model.py", "metrics.csv", "losses.png", "diagram.svg")
STORE_HINT = "give --mlflow a writable local folder (default ./mlruns) or a file: URI, or train without --mlflow"


def store_uri(where: str) -> str:
    """The absolute file: URI of a store named by a folder or a file: URI (E505 for other URIs:
    gendsl writes a local store and talks to no server)."""
    if where.startswith("file:"):
        folder = Path(url2pathname(urlparse(where).path))
    elif "://" in where:
        raise GendslError(error("E505", f"--mlflow {where}: not a local folder",
                                hint="gendsl writes a local MLflow file store and talks to no tracking server: "
                                     "give a folder (--mlflow mlruns) or a file: URI"))
    else:
        folder = Path(where)
    return folder.expanduser().resolve().as_uri()


def store_folder(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


def experiment_name(spec_file: str) -> str:
    """MLflow's own MLFLOW_EXPERIMENT_NAME, else the spec's file name (`vae` for specs/vae.gen)."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or Path(spec_file).stem


def reason(exc: BaseException) -> str:
    """The first line of what went wrong, short enough for a diagnostic."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip().splitlines()
    return (text[0][:300] if text else type(exc).__name__)


class MlflowRun:
    """One gendsl run mirrored to one MLflow run. Opening it imports mlflow and creates (or finds)
    the experiment, so that a missing package or an unwritable store stops training before it
    starts (E530). A failure later only stops the mirror: a W530 note, and training goes on."""

    def __init__(self, where: str, experiment: str, notes: list[Diagnostic]):
        self.uri, self.experiment, self.notes = store_uri(where), experiment, notes
        self.run_id: str | None = None
        self.broken = False
        # recent MLflow keeps its file store behind this switch (its default is now SQLite, which
        # mlflow-skinny cannot write); a local store sends nothing anywhere, so no telemetry either
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        try:
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise GendslError(error("E530", f"--mlflow: the mlflow package cannot be imported ({exc})",
                                    hint="install it (`pip install mlflow-skinny`, or `pip install -e .[mlflow]`; "
                                         "scripts/setup.sh does), or train without --mlflow")) from None
        self.failures = (MlflowException, OSError, ValueError)
        folder = store_folder(self.uri)
        if folder.exists() and not folder.is_dir():
            raise GendslError(error("E530", f"--mlflow: {folder} is a file, not the folder of an MLflow store",
                                    hint=STORE_HINT))
        if os.environ["MLFLOW_ALLOW_FILE_STORE"].lower() not in ("true", "1"):
            raise GendslError(error("E530", "--mlflow: MLFLOW_ALLOW_FILE_STORE is set to "
                                    f"{os.environ['MLFLOW_ALLOW_FILE_STORE']!r}, so MLflow refuses its file store",
                                    hint="unset it (or set it to true) for gendsl's local store, or train without "
                                         "--mlflow"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        except self.failures as exc:
            raise GendslError(error("E530", f"--mlflow: cannot write the MLflow store {folder}: {reason(exc)}",
                                    hint=STORE_HINT)) from None

    def start(self, trainer) -> None:
        """Create the MLflow run (or reopen the one a resumed run logged to) and log its params;
        run.json records where it is."""
        info, recorded = trainer.run.info, trainer.run.info.get("mlflow") or {}
        same_store = recorded.get("tracking_uri") == self.uri
        try:
            if trainer.options.resume and same_store and self.exists(recorded.get("run_id")):
                self.run_id = recorded["run_id"]
                self.client.update_run(self.run_id, status="RUNNING")
                self.client.set_tag(self.run_id, "gendsl.resumed_at_round", str(trainer.round))
            else:
                self.run_id = self.client.create_run(self.experiment_id, run_name=trainer.run.folder.name,
                                                     tags=run_tags(trainer)).info.run_id
            self.log_new_params(run_params(trainer))
        except self.failures as exc:
            raise GendslError(error("E530", f"--mlflow: cannot start a run in {store_folder(self.uri)}: "
                                    f"{reason(exc)}", hint=STORE_HINT)) from None
        info["mlflow"] = {"tracking_uri": self.uri, "experiment": self.experiment, "run_id": self.run_id}

    def exists(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except self.failures:
            return False

    def log_new_params(self, params: dict[str, str]) -> None:
        """MLflow params cannot change: a resumed run (say with a larger --steps) keeps the first values."""
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        fresh = [Param(key, value) for key, value in params.items() if key not in logged]
        for at in range(0, len(fresh), 100):  # log_batch takes at most 100 params a call
            self.client.log_batch(self.run_id, params=fresh[at:at + 100])

    def log(self, row: dict) -> None:
        """A row of metrics.csv: every number but the round, at step = round."""
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["round"])
        metrics = [Metric(key, float(value), now, step) for key, value in row.items()
                   if key != "round" and isinstance(value, (int, float))]
        self.safely(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def image(self, png: Path) -> None:
        """A sample grid (or scatter plot) the run wrote, under artifacts/samples/."""
        self.safely(lambda: self.client.log_artifact(self.run_id, str(png), "samples"))

    def finish(self, status: str, folder: Path) -> None:
        """Log the run folder's files and end the MLflow run as run.json's status says."""
        if self.run_id is None:
            return
        try:
            for name in ARTIFACTS:
                if (folder / name).exists():
                    self.safely(lambda path=folder / name: self.client.log_artifact(self.run_id, str(path)))
        finally:
            self.broken = False  # the run's end is worth one more try
            self.safely(lambda: self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED")))

    def safely(self, call) -> None:
        if self.broken:
            return
        try:
            call()
        except self.failures as exc:
            self.broken = True
            if not any(note.code == "W530" for note in self.notes):
                self.notes.append(warning("W530", f"MLflow logging to {store_folder(self.uri)} failed: {reason(exc)}",
                                          hint="training went on without it; the run folder (metrics.csv, "
                                               "checkpoint.pt, samples/) holds everything"))


def run_tags(trainer) -> dict[str, str]:
    """The tags MLflow's UI shows for a run's source and user, and where the gendsl run folder is."""
    import getpass

    from gendsl import __version__

    tags = {"mlflow.source.name": str(trainer.run.info.get("spec", trainer.run.spec.spec)),
            "mlflow.source.type": "LOCAL", "gendsl.run_folder": str(trainer.run.folder.resolve()),
            "gendsl.version": __version__}
    try:
        tags["mlflow.user"] = getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        pass
    return tags


def run_params(trainer) -> dict[str, str]:
    """The spec's params by their own names (values after --set), and gendsl's settings under dotted
    names (`train.seed`), which no spec param can take."""
    run, train = trainer.run, trainer.run.spec.train
    params = dict(run.spec.params)
    params.update({
        "spec.file": run.info.get("spec", run.spec.spec), "spec.model": run.spec.model, "spec.hash": run.spec.hash,
        "spec.set": " ".join(run.info.get("set", [])), "train.seed": trainer.seed, "train.rounds": trainer.total,
        "train.batch": train.batch, "train.accumulate": trainer.accumulate, "train.clip": train.clip,
        "train.ema": train.ema, "train.log_every": trainer.log_every,
        "train.checkpoint_every": trainer.checkpoint_every, "train.sample_every": trainer.sample_every,
        "train.validate_every": trainer.validate_every, "train.patience": trainer.patience,
        "train.device": trainer.device, "train.amp": trainer.options.amp or False,
        "train.compile": trainer.options.compile})
    for step in run.spec.steps:
        params[f"step.{step.name}"] = f"minimize {step.loss}" + (f", repeat {step.repeat}" if step.repeat > 1 else "")
        optimizer = trainer.optimizers[step.name]
        group = optimizer.param_groups[0]
        params[f"optimizer.{step.name}"] = f"{type(optimizer).__name__}(lr={group.get('initial_lr', group['lr']):g})"
    return {key: str(value) for key, value in params.items()}
