"""`gendsl train --mlflow`: the run mirrored to a local MLflow file store, read back with MLflow's own
client: the params, every row of metrics.csv at its round, sample grids and the run folder's files
as artifacts, and the status run.json ends with (FINISHED; KILLED on Ctrl-C; FAILED); --resume
continues the same MLflow run. A missing mlflow or an unwritable store is E530 before training;
without the flag mlflow is never imported."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SPECS
from tests.e2e.cli import ROOT, gendsl, gendsl_process
from tests.e2e.test_resume import SPEC as RESUMABLE, checkpoint_round
from tests.e2e.test_runtime_errors import SMALL_AE, assert_diagnostic, write


@pytest.fixture(autouse=True)
def file_store(monkeypatch):
    """Reading a file store back needs MLflow 3's opt-in (gendsl sets it for its own process)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


def the_run(store: Path, experiment: str):
    """(client, run): the one MLflow run of an experiment in a store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {store}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client, runs[0]


def csv_rows(folder: Path) -> list[dict]:
    return list(csv.DictReader((folder / "metrics.csv").open()))


def history(client, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def artifacts(client, run, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run.info.run_id, path)}


def logged_run_json(client, run, tmp_path: Path) -> dict:
    local = client.download_artifacts(run.info.run_id, "run.json", str(tmp_path / "downloaded"))
    return json.loads(Path(local).read_text())


def test_train_logs_params_metrics_samples_and_files(tmp_path: Path) -> None:
    store, folder = tmp_path / "mlruns", tmp_path / "run"
    code, stdout, stderr = gendsl("train", SPECS / "ae.gen", "--steps", "6", "--log-every", "2", "--validate-every",
                                  "3", "--sample-every", "3", "--seed", "5", "--set", "hidden=32", "--out", folder,
                                  "--quiet", "--mlflow", store)
    assert code == 0, stderr
    client, run = the_run(store, "ae")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"  # the run folder's name
    assert f"logged to MLflow: run {run.info.run_id} of experiment 'ae'" in stdout
    assert json.loads((folder / "run.json").read_text())["mlflow"] == {
        "tracking_uri": store.resolve().as_uri(), "experiment": "ae", "run_id": run.info.run_id}

    params = run.data.params
    assert {k: params[k] for k in ("hidden", "code", "spec.model", "spec.set", "train.seed", "train.rounds",
                                   "train.batch", "step.recon", "optimizer.recon")} == {
        "hidden": "32", "code": "8", "spec.model": "AE", "spec.set": "hidden=32", "train.seed": "5",
        "train.rounds": "6", "train.batch": "64", "step.recon": "minimize recon", "optimizer.recon": "Adam(lr=0.001)"}
    assert run.data.tags["mlflow.source.name"].endswith("ae.gen")

    rows = csv_rows(folder)
    assert [int(r["round"]) for r in rows] == [2, 3, 4, 6]  # logs every 2, validations at 3 and 6, the end
    steps, values = zip(*history(client, run, "loss/recon"))
    assert list(steps) == [2, 3, 4, 6] and list(values) == pytest.approx([float(r["loss/recon"]) for r in rows])
    assert [step for step, _ in history(client, run, "valid/recon")] == [3, 6]
    assert {"epoch", "seconds", "lr"} <= set(run.data.metrics)

    assert {"checkpoint.pt", "best.pt", "run.json", "metrics.csv", "model.py", "losses.png", "diagram.svg",
            "samples"} <= artifacts(client, run)
    assert artifacts(client, run, "samples") == {"samples/round_0000003.png", "samples/round_0000006.png",
                                                 "samples/final.png"}
    assert logged_run_json(client, run, tmp_path)["status"] == "finished"


def test_ctrl_c_is_killed_and_resume_finishes_the_same_mlflow_run(tmp_path: Path, monkeypatch) -> None:
    spec, store, folder = write(tmp_path, RESUMABLE, "resumable.gen"), tmp_path / "store", tmp_path / "run"
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # gendsl opts in to MLflow's file store by itself
    process = gendsl_process("train", spec, "--steps", "60", "--out", folder, "--quiet", "--mlflow", store,
                             env={"GENDSL_TEST_STEP_DELAY": "0.05"})
    deadline = time.time() + 120
    while checkpoint_round(folder) < 20 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    stopped_at = json.loads((folder / "run.json").read_text())["round"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    client, run = the_run(store, "resumable")
    assert run.info.status == "KILLED"
    assert {"checkpoint.pt", "run.json"} <= artifacts(client, run)
    assert logged_run_json(client, run, tmp_path)["status"] == "interrupted"

    code, _, stderr = gendsl("train", spec, "--steps", "60", "--out", folder, "--resume", "--quiet", "--mlflow", store)
    assert code == 0, stderr
    client, resumed = the_run(store, "resumable")  # still one run: the same one, continued
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    assert resumed.data.tags["gendsl.resumed_at_round"] == str(stopped_at)
    assert [step for step, _ in history(client, resumed, "loss/gen")] == [int(r["round"]) for r in csv_rows(folder)]


def test_a_failed_run_is_failed(tmp_path: Path) -> None:
    spec = write(tmp_path, """
model Blowup {
  data x: real[2] from ring()
  tensor w: real[1] = zeros
  loss up = -mean(exp(w)) + 0 * mean(x)
  train { optimizer SGD(lr=10.0); minimize up; batch 8; steps 100; checkpoint_every 2; log_every 1 }
}
""")
    assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet", "--mlflow", tmp_path / "store"),
                      "E406")
    client, run = the_run(tmp_path / "store", "spec")
    assert run.info.status == "FAILED"
    assert logged_run_json(client, run, tmp_path)["status"] == "failed"
    assert history(client, run, "loss/up"), "the rounds before the NaN are logged"


def test_missing_mlflow_is_e530_before_training(tmp_path: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")] + ["mlflow"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import mlflow` raises ImportError
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    stderr = assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet", "--mlflow",
                                      tmp_path / "store"), "E530")
    assert "pip install mlflow-skinny" in stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_store_that_cannot_be_written_is_e530(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    stderr = assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet", "--mlflow", blocker), "E530")
    assert "a_file" in stderr and "--mlflow" in stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("argv, says", [
    (["--mlflow", "specs/ae.gen"], "put the spec first"),                 # the flag swallowed FILE
    (["specs/ae.gen", "--mlflow", "http://localhost:5000"], "not a local folder"),
], ids=["spec-as-dir", "server-uri"])
def test_mistaken_store_is_e505(argv: list[str], says: str) -> None:
    stderr = assert_diagnostic(gendsl("train", *argv, "--steps", "1"), "E505")
    assert says in stderr


PROBE = r"""
import contextlib, io, json, sys

attempted = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mlflow":
            attempted.append(name)
        return None

sys.meta_path.insert(0, Recorder())
from gendsl.cli import main

codes = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as exc:  # --help
            codes.append(exc.code)
print(json.dumps({"codes": codes, "attempted": attempted,
                  "loaded": [m for m in sys.modules if m.split(".")[0] == "mlflow"]}))
"""


def test_without_the_flag_mlflow_is_never_imported(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    argvs = [["--help"], ["train", "--help"], ["check", str(spec)],
             ["train", str(spec), "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"]]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0, 0]
    assert report["attempted"] == [] and report["loaded"] == [], report
