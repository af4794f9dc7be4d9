"""The contract between the code generator and the runtime: what a compiled model says about
itself. The generated file carries it as the literal `SPEC` (so the file needs only torch);
train, sample, evaluate and score read it through `RunSpec`, validated when a model is loaded.

Torch-free. `VERSION` changes whenever a field changes meaning; a model.py written by another
version is refused with a diagnostic rather than misread.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

VERSION = 2


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Tensor(Contract):
    """The per-sample type of a variable."""

    kind: Literal["real", "bin", "int", "cat", "step"]
    shape: tuple[int, ...] = ()
    classes: int = 0


class DataVar(Tensor):
    """A data variable: which array of which source, and its `data` line (`group`)."""

    name: str
    group: int
    position: int
    source: str
    args: dict[str, Any] = {}
    bounds: tuple[float, float] | None = None   # the family that scores it needs values in here
    scored_by: str = ""                          # that family, for the message when they are not


class Step(Contract):
    """A train step: the model method that computes its loss, and how often it runs per round."""

    name: str
    method: str
    loss: str
    repeat: int = 1


class Train(Contract):
    """The settings of the train block (optimizers and schedules are built by the model itself:
    `configure_optimizers(total)`)."""

    batch: int
    epochs: int | None = None
    steps: int | None = None
    clip: float | None = None
    ema: float | None = None
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000
    sample_every: int = 0
    eval_batch: int = 500
    validate_every: int | None = None   # None: once an epoch, or ten times a run by steps; 0: never
    validate_rows: int = 2000
    patience: int = 0                   # validations without improvement before stopping (0: never)
    accumulate: int = 1                 # batches whose mean gradient makes one update


class Sample(Contract):
    """A `sample` statement: its method, the type it produces, and what it reads."""

    method: str
    kind: str
    shape: tuple[int, ...]
    classes: int = 0                # K of a categorical sample (its levels 0 .. K - 1)
    needs_batch: bool = False
    data: tuple[str, ...] = ()      # held-out data variables it reads (not labels)
    latents: tuple[str, ...] = ()   # latents it draws (interpolation and traversal move them)


class Metric(Contract):
    """A metric of the `evaluate` block, with its options."""

    name: str
    alias: str
    options: dict[str, Any] = {}


class Likelihood(Contract):
    """Which data variable each likelihood method of the model scores (None: no such method)."""

    log_prob: str | None = None      # exact log p(x), or log p(x | given) for a conditional flow
    given: tuple[str, ...] = ()
    log_weights: str | None = None   # importance weights of an encoder model (IWAE, ELBO)
    bound: str | None = None         # the diffusion variational bound

    def scored(self) -> str | None:
        """The variable any likelihood scores (they all score the same one)."""
        return self.log_prob or self.log_weights or self.bound


class Classifier(Contract):
    """The model's `predict(batch)` gives, for each row of x, the label y of lowest energy."""

    x: str
    y: str


class RunSpec(Contract):
    version: int                     # always written (the generated SPEC leaves out defaults)
    model: str
    spec: str
    hash: str
    params: dict[str, Any] = {}
    data: tuple[DataVar, ...] = ()
    latents: dict[str, Tensor] = {}
    losses: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    train: Train | None = None
    samples: dict[str, Sample] = {}
    metrics: tuple[Metric, ...] = ()
    likelihood: Likelihood = Likelihood()
    classifier: Classifier | None = None
    plugins: tuple[str, ...] = ()    # plugin files it was compiled with (`train --resume` loads them again)
    pack: int = 1                    # held-out batches are multiples of it: a packed discriminator's groups

    def variable(self, name: str) -> DataVar:
        """The data variable called `name`."""
        return next(v for v in self.data if v.name == name)


def read_spec(literal: Any) -> RunSpec:
    """Validate the SPEC literal of a generated file; raises ValueError when it is not this
    version's contract."""
    if not isinstance(literal, dict) or literal.get("version") != VERSION:
        found = literal.get("version") if isinstance(literal, dict) else None
        raise ValueError(f"contract version {found}, this gendsl reads version {VERSION}")
    return RunSpec.model_validate(literal)
