"""The training loop of a generated model: alternating steps with repeats, one optimizer per
step over its `over` parameters, LR schedules, clipping, EMA, logging, validation with a best
checkpoint and early stopping, atomic checkpoints and exact resume, a checkpoint on Ctrl-C or
SIGTERM, sample grids, a NaN guard, and an optional MLflow mirror. Host syncs happen only at
logging/checkpoints."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from gendsl.diagnostics import GendslError, error
from gendsl.runtime import checkpoint
from gendsl.runtime.allocator import keep_freed_memory
from gendsl.runtime.average import WeightAverage
from gendsl.runtime.data import Batcher, load_split
from gendsl.runtime.logs import MetricLog, progress
from gendsl.runtime.run import Run, write_info
from gendsl.runtime.validate import Validator, default_every


@dataclass
class Options:
    device: str = "auto"
    seed: int | None = None
    steps: int | None = None
    epochs: int | None = None
    resume: bool = False
    quiet: bool = False
    amp: bool | str = False      # True/"auto": fp16 with a GradScaler on CUDA, bf16 on CPU; or "bf16", "fp16"
    compile: bool = False
    log_every: int | None = None
    checkpoint_every: int | None = None
    sample_every: int | None = None
    validate_every: int | None = None
    patience: int | None = None
    until: int | None = None     # stop at this epoch (or round) of the run, its LR schedule unchanged
    accumulate: int | None = None
    mlflow: str | None = None    # also log to the MLflow file store in this folder (or file: URI)


def pick_device(name: str) -> torch.device:
    """--device auto|cpu|cuda[:N]; asking for a GPU that is not there is a diagnostic."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GendslError(error("E409", f"--device {name}: no CUDA device is available here",
                                hint="use --device cpu (or auto)"))
    try:
        return torch.device(name)
    except RuntimeError:
        raise GendslError(error("E505", f"--device {name}: not a device", hint="use auto, cpu or cuda")) from None


ESTIMATE_AFTER = 20   # rounds timed before estimating the rest
LONG_RUN = 120        # seconds: a run this long says so


def format_duration(seconds: float) -> str:
    """`47 min`, `2.5 h`, `40 s`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype `--amp` asks for: fp16 on CUDA (with a GradScaler), bf16 elsewhere."""
    if not amp:
        return None
    if amp in (True, "auto"):
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def parameters_of(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    """The parameters an optimizer updates (what its step's `over` names)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


class Trainer:
    def __init__(self, run: Run, options: Options, where=None):
        self.run, self.options = run, options
        spec, train = run.spec, run.spec.train
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = self.setup_device()
        keep_freed_memory()  # before the data and model allocate
        self.seed = options.seed if options.seed is not None else train.seed
        self.notes: list = []  # warnings for the CLI to print when training ends
        self.tracker = self.open_tracker()
        torch.manual_seed(self.seed + self.rank)
        self.model = run.module.build().to(self.device)
        self.caller = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.caller = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.groups = load_split(spec, "train", self.device, where)
        self.accumulate = options.accumulate or train.accumulate
        self.batcher = Batcher(self.groups, train.batch, self.seed, self.rank, self.world)
        self.total, self.by_epochs = self.total_rounds(train)
        configured = self.model.configure_optimizers(self.total)
        self.optimizers = {name: optimizer for name, (optimizer, _) in configured.items()}
        self.schedulers = {name: scheduler for name, (_, scheduler) in configured.items()}
        self.amp = amp_dtype(options.amp, self.device)
        # fp16 gradients underflow without loss scaling; one scaler per step, as each has its own loss
        self.scalers = {name: torch.amp.GradScaler(self.device.type) for name in self.optimizers} \
            if self.amp == torch.float16 else {}
        self.methods = {}
        for step in spec.steps:
            method = getattr(self.model, step.method)
            self.methods[step.name] = torch.compile(method) if options.compile else method
        self.ema = None
        if train.ema:
            self.ema = WeightAverage(self.model, train.ema)
        self.log_every = options.log_every or train.log_every
        self.checkpoint_every = options.checkpoint_every or train.checkpoint_every
        self.sample_every = train.sample_every if options.sample_every is None else options.sample_every
        self.setup_validation(self.by_epochs, where)
        self.signalled: str | None = None  # the signal that asked training to stop
        self.final_samples = None           # the grid `fit` wrote at the end
        self.round = 0
        self.logged_at = 0  # the round of the last log row: the losses since then are summed
        self.sums: dict[str, torch.Tensor] = {}  # each step's summed loss since the last log
        self.delay = float(os.environ.get("GENDSL_TEST_STEP_DELAY", "0"))  # only for the kill/resume test

    def open_tracker(self):
        """The MLflow mirror that --mlflow asks for (main process only); mlflow loads only then."""
        if self.options.mlflow is None or not self.main:
            return None
        from gendsl.runtime.mlflow_log import MlflowRun, experiment_name

        return MlflowRun(self.options.mlflow, experiment_name(self.run.spec.spec), self.notes)

    def setup_validation(self, by_epochs: bool, where) -> None:
        """How often to validate, the patience, and the steps whose schedule follows the valid loss.
        Every process validates (on the same rows), so that all take the same decisions."""
        options, train = self.options, self.run.spec.train
        self.validate_every = options.validate_every if options.validate_every is not None else \
            train.validate_every if train.validate_every is not None else \
            default_every(self.total, self.rounds_per_epoch(), by_epochs)
        self.patience = options.patience if options.patience is not None else train.patience
        self.on_plateau = {name for name, s in self.schedulers.items() if isinstance(s, ReduceLROnPlateau)}
        needs = f"patience {self.patience}" if self.patience else "the plateau schedule" if self.on_plateau else ""
        if needs and not self.validate_every:
            raise GendslError(error("E505", f"{needs} needs validation, which validate_every 0 turns off",
                                    hint="validate (leave out validate_every 0 / --validate-every 0), or drop "
                                         f"{needs}"))
        self.validator = Validator(self.run.spec, self.device, train.validate_rows, train.eval_batch, where) \
            if self.validate_every else None

    def setup_device(self) -> torch.device:
        if self.world == 1:
            return pick_device(self.options.device)
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and self.options.device != "cpu"
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(local)
        return torch.device(f"cuda:{local}" if cuda else "cpu")

    def total_rounds(self, train) -> tuple[int, bool]:
        """The rounds to train, and whether they were asked for in epochs. A resumed run without
        --steps or --epochs keeps the length it started with (its LR schedule depends on it)."""
        recorded = self.run.info.get("total") if self.options.resume else None
        if self.options.steps is None and self.options.epochs is None and isinstance(recorded, int):
            return recorded, bool(self.run.info.get("by_epochs"))
        if self.options.steps is not None:
            return self.options.steps, False
        epochs = self.options.epochs if self.options.epochs is not None else train.epochs
        if epochs is not None and (self.options.epochs is not None or train.steps is None):
            return epochs * self.rounds_per_epoch(), True
        return train.steps, False

    def end_round(self) -> int:
        """The round this command trains to: the run's last, or --until's epoch (or round) of it."""
        until = self.options.until
        if until is None:
            return self.total
        unit, per, an = ("epoch", self.rounds_per_epoch(), "an") if self.by_epochs else ("round", 1, "a")
        end = until * per
        if end > self.total:
            raise GendslError(error("E512", f"--until {until}: past the end of the run, {unit} {self.total // per}",
                                    hint=f"--until names {an} {unit} of the run; lengthen the run with --steps or "
                                         "--epochs (its LR schedule spans that length)"))
        if end <= self.round:
            raise GendslError(error("E512", f"--until {until}: this run is already at {unit} {self.round // per}",
                                    hint=f"name a later {unit}, or leave out --until to train to the end"))
        return end

    def rounds_per_epoch(self) -> int:
        """An epoch's rounds: each round's update reads `accumulate` batches."""
        return max(1, self.batcher.per_epoch() // self.accumulate)

    @property
    def main(self) -> bool:
        return self.rank == 0

    # ---- state ----
    def state(self) -> dict:
        return {"hash": self.run.spec.hash, "round": self.round, "model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
                "batcher": self.batcher.state(), "rng": checkpoint.rng_state(), "seed": self.seed,
                "total": self.total, "validation": self.validator.state() if self.validator else None}

    def restore(self) -> None:
        state = checkpoint.load(self.run.folder / "checkpoint.pt", self.run.spec.hash, self.device)
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
            self.schedulers[name].load_state_dict(state["schedulers"][name])
            if name in self.scalers and state.get("scalers", {}).get(name):
                self.scalers[name].load_state_dict(state["scalers"][name])
        self.batcher.restore(state["batcher"])
        checkpoint.restore_rng(state["rng"])
        self.round = self.logged_at = state["round"]
        if self.validator is not None:
            self.validator.restore(state.get("validation"))

    def check_finite(self) -> None:
        """One host sync: a NaN or inf in any loss since the last log shows in the summed losses."""
        if self.sums and not bool(torch.isfinite(torch.stack(list(self.sums.values()))).all()):
            self.stop_nan()

    def save(self, name: str = "checkpoint.pt") -> None:
        self.check_finite()  # never let a non-finite model replace the last good checkpoint
        if self.main:
            checkpoint.save(self.run.folder / name, self.state())

    def stop_nan(self) -> None:
        raise GendslError(error(
            "E406", f"a loss became NaN or infinite before round {self.round}; training stopped",
            hint="the last good checkpoint is kept (resume from it with --resume after a fix): lower the "
                 "learning rate, add `clip 1.0` to the train block, or check the data"))

    # ---- the loop ----
    def one_round(self) -> None:
        for step in self.run.spec.steps:
            for _ in range(step.repeat):
                self.update(step)
            if step.name not in self.on_plateau:  # those step on the valid loss (validate)
                self.schedulers[step.name].step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.delay:
            time.sleep(self.delay)

    def update(self, step) -> None:
        """One optimizer update of a step: its loss on `accumulate` batches (the gradients of their
        mean), with autocast and loss scaling when --amp asks for them, and clipping."""
        name, optimizer, scaler = step.name, self.optimizers[step.name], self.scalers.get(step.name)
        optimizer.zero_grad(set_to_none=True)
        losses = []
        for _ in range(self.accumulate):
            batch = self.batcher.next()
            # no autocast context and no division by 1 in the common case: each costs every update
            with torch.autocast(self.device.type, dtype=self.amp) if self.amp is not None else nullcontext():
                loss = self.caller(step.method, batch) if self.world > 1 else self.methods[name](batch)
            if loss.requires_grad:  # a penalty set to 0 (`--set gamma=0`) is not computed at all
                part = loss / self.accumulate if self.accumulate > 1 else loss
                (scaler.scale(part) if scaler else part).backward()
            losses.append(loss.detach())
        # a scaler can only step an optimizer it has seen gradients of (a zero update has none)
        scaled = scaler is not None and any(p.grad is not None for p in parameters_of(optimizer))
        if scaled:
            scaler.unscale_(optimizer)  # clip the true gradients
        if self.run.spec.train.clip:
            torch.nn.utils.clip_grad_norm_(parameters_of(optimizer), self.run.spec.train.clip)
        if scaled:
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            scaler.update()
        else:
            optimizer.step()
        mean = losses[0] if self.accumulate == 1 else torch.stack(losses).mean()
        self.sums[name] = self.sums[name] + mean if name in self.sums else mean

    def fit(self, on_sample=None) -> dict:
        """Train to the end (or resume to it); returns the last logged metrics. An MLflow run
        ends however training does, with the status run.json ends with."""
        try:
            return self.train_to_the_end(on_sample)
        finally:
            if self.tracker is not None:
                self.tracker.finish(self.run.info.get("status", ""), self.run.folder)

    def train_to_the_end(self, on_sample) -> dict:
        if self.options.resume:
            self.restore()
            if self.round > self.total:
                raise GendslError(error(
                    "E511", f"--resume: this run has already trained {self.round} rounds, more than the "
                    f"{self.total} asked for", hint=f"ask for at least {self.round} (--steps {self.round} or more), "
                    "or sample and evaluate the run as it is"))
        end = self.end_round()
        if self.tracker is not None:
            self.tracker.start(self)
        log = MetricLog(self.run.folder, self.log_fields(), tensorboard=self.main, resume=self.options.resume,
                        mirror=self.tracker) if self.main else None
        if log is not None and self.options.resume:
            log.truncate(self.round)
        self.model.train()
        bar = progress(end, self.round, self.options.quiet or not self.main)
        last: dict = {}
        started, first_round = time.perf_counter(), self.round
        self.update_info("running")
        status = "finished" if end == self.total else "paused"
        try:
            with self.stop_on_signals(), self.interrupted_honestly():
                while self.round < end:
                    self.one_round()
                    self.round += 1
                    bar.update(1)
                    if self.round - first_round == ESTIMATE_AFTER:
                        self.say_how_long(time.perf_counter() - started, end, bar)
                    validate = self.validator is not None and (self.round % self.validate_every == 0
                                                               or self.round == end)
                    if validate or self.round % self.log_every == 0 or self.round == end:
                        last = self.log_metrics(log, started, self.validate() if validate else {})
                        self.sums.clear()
                        bar.set_postfix({k.partition("/")[2] if k.startswith("loss/") else k: f"{v:.4g}"
                                         for k, v in last.items() if k.startswith(("loss/", "valid/"))})
                    if self.round % self.checkpoint_every == 0 or self.round == end:
                        self.save()
                    if on_sample and self.sample_every and self.round % self.sample_every == 0:
                        self.publish(log, "grid", on_sample(self, f"round_{self.round:07d}"))
                    if validate and self.patience and self.validator.stale >= self.patience:
                        status = self.stop_early()
                        break
                    if self.signalled:
                        self.stop_signalled()
            self.final_samples = self.publish(log, "final", on_sample(self, "final")) if on_sample else None
        finally:
            bar.close()
            if log is not None:
                log.close()
        self.update_info(status)
        if status == "paused" and self.main:
            print(f"paused at round {self.round} of {self.total} (--until); continue with `gendsl train "
                  f"{self.run.info.get('spec', 'SPEC')} --out {self.run.folder} --resume`", file=sys.stderr)
        self.leave_group()
        if log is not None and log.rows:
            from gendsl.runtime.images import save_loss_plot

            save_loss_plot(log.rows, self.run.folder / "losses.png")
        return last

    def say_how_long(self, seconds: float, end: int, bar) -> None:
        """A run that will clearly take minutes says so, and how to shorten it."""
        left = seconds / ESTIMATE_AFTER * (end - self.round)
        if self.main and left > LONG_RUN:
            bar.write(f"about {format_duration(left)} more for {end - self.round:,} rounds at this speed "
                      f"(shorter: --steps N or --epochs N; Ctrl-C saves a checkpoint that --resume continues)",
                      file=sys.stderr)

    def publish(self, log: MetricLog | None, tag: str, picture):
        """Show a picture the run wrote in TensorBoard (with the weights' histograms) and MLflow too."""
        if log is not None and picture is not None:
            log.image(tag, picture, self.round)
            log.histograms(self.model.named_parameters(), self.round)
        return picture

    def validate(self) -> dict[str, float]:
        """`valid/STEP` losses of the (EMA) weights; best.pt when the first step's is the lowest yet."""
        scores = self.validator.losses(self.eval_model())
        self.model.train()
        for name in self.on_plateau:
            self.schedulers[name].step(scores[f"valid/{name}"])
        first = scores[f"valid/{self.run.spec.steps[0].name}"]
        if self.validator.improved(first, self.round):
            self.save("best.pt")
        return scores

    def stop_early(self) -> str:
        self.save()
        if self.main:
            v = self.validator
            print(f"early stop at round {self.round}: the valid loss has not improved on {v.best:.4g} (round "
                  f"{v.best_round}) for {v.stale} validations; best.pt holds those weights", file=sys.stderr)
        return "stopped early"

    @contextmanager
    def stop_on_signals(self):
        """Ctrl-C or SIGTERM ends training after the current round, with a checkpoint (a second
        Ctrl-C stops at once). Only the main thread may set signal handlers."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask(signum, _frame):
            if self.signalled and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signalled = signal.Signals(signum).name

        previous = {s: signal.signal(s, ask) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextmanager
    def interrupted_honestly(self):
        """run.json never says "running" for a run that a second Ctrl-C (or anything else) ended."""
        try:
            yield
        except KeyboardInterrupt:
            self.update_info("interrupted")
            raise
        except GendslError:
            self.update_info("failed")
            raise

    def stop_signalled(self) -> None:
        """Save, record an honest status, say what was saved, and end like an interrupted command."""
        self.save()
        if self.main:
            print(f"\n{self.signalled}: stopped at round {self.round} of {self.total}; saved "
                  f"{self.run.folder / 'checkpoint.pt'} (continue with `gendsl train {self.run.info.get('spec', 'SPEC')} "
                  f"--out {self.run.folder} --resume`)", file=sys.stderr)
        raise KeyboardInterrupt

    def log_fields(self) -> list[str]:
        steps = [s.name for s in self.run.spec.steps]
        valid = [f"valid/{s}" for s in steps] if self.validator is not None else []
        return ["round", "epoch", "seconds", *[f"loss/{s}" for s in steps], *valid, "lr"]

    def log_metrics(self, log: MetricLog | None, started: float, validation: dict[str, float]) -> dict:
        self.check_finite()
        counts = {s.name: s.repeat for s in self.run.spec.steps}
        rounds, self.logged_at = self.round - self.logged_at, self.round
        row = {"round": self.round, "epoch": round(self.round / self.batcher.per_epoch(), 3),
               "seconds": round(time.perf_counter() - started, 2)}
        for name, total in self.sums.items():
            row[f"loss/{name}"] = float(total) / (counts[name] * rounds)
        row.update(validation)
        first = next(iter(self.optimizers.values()), None)
        if first is not None:
            row["lr"] = first.param_groups[0]["lr"]
        if log is not None:
            log.log(row)
        return row

    def leave_group(self) -> None:
        """Distributed runs end together: every rank reaches the barrier, then the group closes."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()

    def update_info(self, status: str) -> None:
        if self.main:
            self.run.info.update(status=status, round=self.round, total=self.total, by_epochs=self.by_epochs,
                                 device=str(self.device), seed=self.seed)
            write_info(self.run.folder, self.run.info)

    def eval_model(self) -> torch.nn.Module:
        """The weights to sample and evaluate with: the EMA when the spec asks for one."""
        model = self.ema.module if self.ema is not None else self.model
        return model.eval()
