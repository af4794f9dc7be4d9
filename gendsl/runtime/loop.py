"""The training loop of a generated model: alternating steps with repeats, one optimizer per
step over its `over` parameters, LR schedules, clipping, EMA, logging, atomic checkpoints and
exact resume, sample grids, and a NaN guard. Host syncs happen only at logging/checkpoints."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from gendsl.diagnostics import GendslError, error
from gendsl.runtime import checkpoint
from gendsl.runtime.data import Batcher, load_split
from gendsl.runtime.logs import MetricLog, progress
from gendsl.runtime.run import Run, write_info


@dataclass
class Options:
    device: str = "auto"
    seed: int | None = None
    steps: int | None = None
    epochs: int | None = None
    resume: bool = False
    quiet: bool = False
    amp: bool = False
    compile: bool = False
    log_every: int | None = None
    checkpoint_every: int | None = None
    sample_every: int | None = None


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
        self.seed = options.seed if options.seed is not None else train.seed
        torch.manual_seed(self.seed + self.rank)
        self.model = run.module.build().to(self.device)
        self.caller = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.caller = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.groups = load_split(spec, "train", self.device, where)
        self.batcher = Batcher(self.groups, train.batch, self.seed, self.rank, self.world)
        self.total = self.total_rounds(train)
        configured = self.model.configure_optimizers(self.total)
        self.optimizers = {name: optimizer for name, (optimizer, _) in configured.items()}
        self.schedulers = {name: scheduler for name, (_, scheduler) in configured.items()}
        self.methods = {}
        for step in spec.steps:
            method = getattr(self.model, step.method)
            self.methods[step.name] = torch.compile(method) if options.compile else method
        self.ema = None
        if train.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(train.ema), use_buffers=True)
        self.log_every = options.log_every or train.log_every
        self.checkpoint_every = options.checkpoint_every or train.checkpoint_every
        self.sample_every = train.sample_every if options.sample_every is None else options.sample_every
        self.round = 0
        self.sums: dict[str, torch.Tensor] = {}  # each step's summed loss since the last log
        self.delay = float(os.environ.get("GENDSL_TEST_STEP_DELAY", "0"))  # only for the kill/resume test

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

    def total_rounds(self, train) -> int:
        if self.options.steps is not None:
            return self.options.steps
        epochs = self.options.epochs if self.options.epochs is not None else train.epochs
        if epochs is not None and (self.options.epochs is not None or train.steps is None):
            return epochs * self.batcher.per_epoch()
        return train.steps

    @property
    def main(self) -> bool:
        return self.rank == 0

    # ---- state ----
    def state(self) -> dict:
        return {"hash": self.run.spec.hash, "round": self.round, "model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "batcher": self.batcher.state(), "rng": checkpoint.rng_state(), "seed": self.seed,
                "total": self.total}

    def restore(self) -> None:
        state = checkpoint.load(self.run.folder / "checkpoint.pt", self.run.spec.hash, self.device)
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
            self.schedulers[name].load_state_dict(state["schedulers"][name])
        self.batcher.restore(state["batcher"])
        checkpoint.restore_rng(state["rng"])
        self.round = state["round"]

    def check_finite(self) -> None:
        """One host sync: a NaN or inf in any loss since the last log shows in the summed losses."""
        if self.sums and not bool(torch.isfinite(torch.stack(list(self.sums.values()))).all()):
            self.stop_nan()

    def save(self) -> None:
        self.check_finite()  # never let a non-finite model replace the last good checkpoint
        if self.main:
            checkpoint.save(self.run.folder / "checkpoint.pt", self.state())

    def stop_nan(self) -> None:
        raise GendslError(error(
            "E406", f"a loss became NaN or infinite before round {self.round}; training stopped",
            hint="the last good checkpoint is kept (resume from it with --resume after a fix): lower the "
                 "learning rate, add `clip 1.0` to the train block, or check the data"))

    # ---- the loop ----
    def one_round(self) -> None:
        clip = self.run.spec.train.clip
        for step in self.run.spec.steps:
            name = step.name
            optimizer, method = self.optimizers[name], self.methods[name]
            for _ in range(step.repeat):
                batch = self.batcher.next()
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.options.amp):
                    loss = self.caller(step.method, batch) if self.world > 1 else method(batch)
                optimizer.zero_grad(set_to_none=True)
                if loss.requires_grad:  # a penalty set to 0 (`--set gamma=0`) is not computed at all
                    loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(parameters_of(optimizer), clip)
                optimizer.step()
                sums = self.sums
                sums[name] = sums[name] + loss.detach() if name in sums else loss.detach()
            self.schedulers[name].step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.delay:
            time.sleep(self.delay)

    def fit(self, on_sample=None) -> dict:
        """Train to the end (or resume to it); returns the last logged metrics."""
        if self.options.resume:
            self.restore()
            if self.round > self.total:
                raise GendslError(error(
                    "E511", f"--resume: this run has already trained {self.round} rounds, more than the "
                    f"{self.total} asked for", hint=f"ask for at least {self.round} (--steps {self.round} or more), "
                    "or sample and evaluate the run as it is"))
        log = MetricLog(self.run.folder, tensorboard=self.main, resume=self.options.resume) if self.main else None
        if log is not None and self.options.resume:
            log.truncate(self.round)
        self.model.train()
        bar = progress(self.total, self.round, self.options.quiet or not self.main)
        last: dict = {}
        started = time.perf_counter()
        self.update_info("running")
        try:
            while self.round < self.total:
                self.one_round()
                self.round += 1
                bar.update(1)
                if self.round % self.log_every == 0 or self.round == self.total:
                    last = self.log_metrics(log, started)
                    self.sums.clear()
                    bar.set_postfix({k[5:]: f"{v:.4g}" for k, v in last.items() if k.startswith("loss/")})
                if self.round % self.checkpoint_every == 0 or self.round == self.total:
                    self.save()
                if on_sample and self.sample_every and self.round % self.sample_every == 0:
                    on_sample(self, f"round_{self.round:07d}")
        finally:
            bar.close()
            if log is not None:
                log.close()
        self.update_info("finished")
        self.leave_group()
        if log is not None and log.rows:
            from gendsl.runtime.images import save_loss_plot

            save_loss_plot(log.rows, self.run.folder / "losses.png")
        return last

    def log_metrics(self, log: MetricLog | None, started: float) -> dict:
        self.check_finite()
        counts = {s.name: s.repeat for s in self.run.spec.steps}
        rounds = self.round % self.log_every or self.log_every
        row = {"round": self.round, "epoch": round(self.round / self.batcher.per_epoch(), 3),
               "seconds": round(time.perf_counter() - started, 2)}
        for name, total in self.sums.items():
            row[f"loss/{name}"] = float(total) / (counts[name] * rounds)
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
            self.run.info.update(status=status, round=self.round, total=self.total, device=str(self.device),
                                 seed=self.seed)
            write_info(self.run.folder, self.run.info)

    def eval_model(self) -> torch.nn.Module:
        """The weights to sample and evaluate with: the EMA when the spec asks for one."""
        model = self.ema.module if self.ema is not None else self.model
        return model.eval()
