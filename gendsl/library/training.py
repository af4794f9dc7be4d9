"""What a `train` block, a `sampler`, a `diffusion`, a `tensor` initializer and an `evaluate`
block may name: optimizers, LR schedules, settings, samplers, noise processes, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from gendsl.library.entries import Code, Registry, call_keywords, require
from gendsl.library.signature import Count, Fraction, NonNegative, Positive, Range, Size

Pairs = Annotated[int, Range(2)]   # samples compared in two halves
Beta = Annotated[float, Range(0, 1, open_high=True)]   # an Adam moment's decay

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
SAMPLERS = Registry("sampler")
PROCESSES = Registry("diffusion process")
BETA_SCHEDULES = Registry("noise schedule")
METRICS = Registry("metric")
INITS = Registry("initializer")


# ---- optimizers: torch.optim, over the parameters a step updates ----

def _optimizer(name: str, fused: bool = True, **options: Any) -> Code:
    """`fused=True` where torch has a fused kernel: the same update, one kernel per tensor instead
    of one per operation (on CPU, Adam's step over MADE's 13M weights: 12 ms against 108 ms)."""
    return Code(f"torch.optim.{name}({{params}}, {call_keywords(options)}{', fused=True' if fused else ''})")


@OPTIMIZERS.register("Adam", "Adam (Kingma & Ba 2015)", skip=0)
def adam(lr: Positive = 1e-3, betas: tuple[Beta, Beta] = (0.9, 0.999), eps: Positive = 1e-8,
         weight_decay: NonNegative = 0.0) -> Code:
    return _optimizer("Adam", lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("AdamW", "Adam with decoupled weight decay (Loshchilov & Hutter 2019)", skip=0)
def adamw(lr: Positive = 1e-3, betas: tuple[Beta, Beta] = (0.9, 0.999), eps: Positive = 1e-8,
          weight_decay: NonNegative = 0.01) -> Code:
    return _optimizer("AdamW", lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("SGD", "stochastic gradient descent with optional momentum", skip=0)
def sgd(lr: Positive, momentum: NonNegative = 0.0, nesterov: bool = False, weight_decay: NonNegative = 0.0) -> Code:
    require(not nesterov or momentum > 0, "SGD(nesterov=true) needs momentum > 0",
            "e.g. SGD(lr=0.01, momentum=0.9, nesterov=true)")
    return _optimizer("SGD", lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


@OPTIMIZERS.register("RMSprop", "RMSprop (used by the original WGAN)", skip=0)
def rmsprop(lr: Positive = 1e-3, alpha: Fraction = 0.99, momentum: NonNegative = 0.0) -> Code:
    return _optimizer("RMSprop", fused=False, lr=lr, alpha=alpha, momentum=momentum)   # torch has no fused one


# ---- learning-rate schedules: a factor of the base LR per round (torch's LambdaLR) ----

def _schedule(helper: str, **options: Any) -> Code:
    keywords = "".join(f", {k}={v!r}" for k, v in options.items())
    return Code(f"torch.optim.lr_scheduler.LambdaLR({{optimizer}}, {helper}({{total}}{keywords}))", (helper,))


@SCHEDULES.register("constant", "the base learning rate throughout (after an optional warmup)", skip=0)
def constant(warmup: Size = 0) -> Code:
    require(warmup >= 0, f"constant needs warmup >= 0, got {warmup}")
    return _schedule("constant_lr", warmup=warmup)


@SCHEDULES.register("cosine", "cosine decay to min_factor x base LR, after a linear warmup", skip=0)
def cosine(warmup: Size = 0, min_factor: Fraction = 0.0) -> Code:
    require(warmup >= 0 and 0 <= min_factor <= 1, "cosine needs warmup >= 0 and 0 <= min_factor <= 1")
    return _schedule("cosine_lr", warmup=warmup, min_factor=min_factor)


@SCHEDULES.register("linear", "linear decay to zero, after a linear warmup", skip=0)
def linear(warmup: Size = 0) -> Code:
    require(warmup >= 0, f"linear needs warmup >= 0, got {warmup}")
    return _schedule("linear_lr", warmup=warmup)


@SCHEDULES.register("step", "multiply the LR by gamma every `every` steps", skip=0)
def step_decay(every: Count, gamma: Positive = 0.1) -> Code:
    require(every > 0, f"step schedule needs every > 0, got {every}")
    return _schedule("step_lr", every=every, gamma=gamma)


@SCHEDULES.register("stages", "`count` constant stages, stage i lasting growth^i / sum_j growth^j of the run at "
                    "final^(i / (count - 1)) x base LR; the defaults over 3,280 epochs are Burda et al. 2016's "
                    "3^i epochs at 1e-3 x 10^(-i/7)", skip=0)
def stages(count: Annotated[int, Range(2)] = 8, growth: Positive = 3.0, final: Fraction = 0.1) -> Code:
    require(final > 0, f"stages needs final > 0, got {final}", "the last stage's factor of the base LR, e.g. 0.1")
    return _schedule("staged_lr", count=count, growth=growth, final=final)


@SCHEDULES.register("onecycle", "the one-cycle policy (Smith & Topin 2019): a cosine rise from lr/div to "
                    "the optimizer's lr over the first `rise` share of the run, then a cosine fall to "
                    "lr/(div x final_div)", skip=0)
def one_cycle(rise: Fraction = 0.3, div: Positive = 25.0, final_div: Positive = 1e4) -> Code:
    require(0 < rise < 1, f"onecycle needs 0 < rise < 1, got {rise}", "the share of the run spent rising, e.g. 0.3")
    return _schedule("one_cycle_lr", rise=rise, div=div, final_div=final_div)


@SCHEDULES.register("plateau", "multiply the LR by `factor` when its step's valid loss has not fallen "
                    "for more than `patience` validations (torch's ReduceLROnPlateau; needs validation)", skip=0)
def plateau(factor: Fraction = 0.1, patience: Size = 2, threshold: Fraction = 1e-4,
            min_lr: NonNegative = 0.0) -> Code:
    require(0 < factor < 1, f"plateau needs 0 < factor < 1, got {factor}", "e.g. plateau(factor=0.5)")
    require(threshold < 1, f"plateau needs threshold < 1, got {threshold}",
            "a valid loss counts as lower when it is below best x (1 - threshold), e.g. threshold=0.001")
    return Code("torch.optim.lr_scheduler.ReduceLROnPlateau({optimizer}, "
                + call_keywords(dict(factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)) + ")")


# ---- train settings: `name value` lines of a train block ----

@dataclass(frozen=True)
class Setting:
    kind: Literal["int", "float", "optimizer", "schedule", "bool"]
    doc: str
    minimum: float | None = None
    maximum: float | None = None


SETTINGS: dict[str, Setting] = {
    "batch": Setting("int", "samples per step", minimum=1),
    "epochs": Setting("int", "passes over the training split (or give `steps`)", minimum=1),
    "steps": Setting("int", "optimizer rounds (each runs every train step once, with its repeats)",
                     minimum=1),
    "optimizer": Setting("optimizer", "optimizer of steps that name none (default Adam(lr=1e-3))"),
    "schedule": Setting("schedule", "learning-rate schedule of every optimizer (default constant())"),
    "clip": Setting("float", "clip each step's gradient norm to this value", minimum=0),
    "ema": Setting("float", "keep an exponential moving average of the weights with this decay; "
                   "sampling and evaluation use it", minimum=0, maximum=1),
    "seed": Setting("int", "random seed (overridden by --seed)", minimum=0),
    "log_every": Setting("int", "steps between logged metrics", minimum=1),
    "checkpoint_every": Setting("int", "steps between checkpoints", minimum=1),
    "sample_every": Setting("int", "steps between sample grids (0: only at the end); a grid shows means where "
                            "latents or held-out inputs make the samples differ, else (an autoregressive model) "
                            "draws", minimum=0),
    "eval_batch": Setting("int", "batch size of evaluation and sampling", minimum=1),
    "validate_every": Setting("int", "rounds between validations on the valid split (default: once an "
                              "epoch, or ten times a run that trains by steps; 0: never)", minimum=0),
    "validate_rows": Setting("int", "valid rows each validation scores (the first ones, the same each time)",
                             minimum=1),
    "accumulate": Setting("int", "batches whose gradients each update averages (an effective batch of "
                          "batch x accumulate)", minimum=1),
    "patience": Setting("int", "stop after this many validations without a lower valid loss (0: never)",
                        minimum=0),
}


# ---- samplers ----

@SAMPLERS.register("Langevin", "stochastic gradient Langevin dynamics on an energy, with a replay "
                   "buffer (Du & Mordatch 2019); given=y: x from exp(-E(x, y)) given each row's y, a buffer per label",
                   skip=0)
def langevin(energy: Any, steps: Count = 60, step_size: Positive = 10.0, noise: NonNegative = 0.005,
             buffer: Size = 10000, reinit: Fraction = 0.05, low: float = -1.0, high: float = 1.0,
             given: Any = None) -> Code:
    require(steps >= 1 and step_size > 0 and noise >= 0, "Langevin needs steps >= 1, step_size > 0, "
            "noise >= 0")
    require(0 <= reinit <= 1, f"Langevin reinit is a probability, got {reinit}")
    require(low < high, f"Langevin's init range needs low < high, got [{low}, {high}]")
    options = call_keywords(dict(steps=steps, step_size=step_size, noise=noise, buffer=buffer, reinit=reinit,
                                 low=low, high=high))
    # {classes}: the labels of a `given` category (a buffer each), else 0
    return Code(f"Langevin({{shape}}, {options}" + (", classes={classes})" if given is not None else ")"),
                ("Langevin",))


# ---- diffusion ----

@PROCESSES.register("Gaussian", "DDPM's Gaussian forward process (Ho et al. 2020); levels > 1: data "
                    "quantized to that many values in [0, 1], scored with DDPM's discretized decoder; "
                    "variance=learned: the denoiser also outputs v, the reverse variances "
                    "exp(v log beta_t + (1 - v) log beta-tilde_t), trained by the hybrid loss (Nichol & "
                    "Dhariwal 2021)", skip=0)
def gaussian(steps: int = 1000, betas: Any = None, levels: int = 0,
             variance: Literal["fixed", "learned"] = "fixed") -> Code:
    require(steps >= 2, f"a diffusion needs at least 2 steps, got {steps}")
    require(levels == 0 or levels >= 2, f"levels is 0 (continuous data) or at least 2, got {levels}")
    learned = ", learned=True" if variance == "learned" else ""
    return Code(f"GaussianDiffusion({steps}, {{betas}}, levels={levels}{learned})", ("GaussianDiffusion",))


@BETA_SCHEDULES.register("linear", "betas linearly spaced from start to end (DDPM)", skip=0)
def linear_betas(start: float = 1e-4, end: float = 0.02) -> Code:
    require(0 < start < end < 1, f"linear betas need 0 < start < end < 1, got {start}, {end}")
    return Code(f"GaussianDiffusion.linear({{steps}}, {start!r}, {end!r})", ("GaussianDiffusion",))


@BETA_SCHEDULES.register("cosine", "the cosine schedule of Nichol & Dhariwal (2021)", skip=0)
def cosine_betas(s: float = 0.008) -> Code:
    require(0 <= s < 1, f"cosine betas need 0 <= s < 1, got {s}")
    return Code(f"GaussianDiffusion.cosine({{steps}}, {s!r})", ("GaussianDiffusion",))


# ---- tensor initializers ----

@INITS.register("zeros", "all zeros", skip=0)
def zeros() -> Code:
    return Code("torch.zeros({shape})")


@INITS.register("ones", "all ones", skip=0)
def ones() -> Code:
    return Code("torch.ones({shape})")


@INITS.register("normal", "independent Normal(mean, std) values", skip=0)
def normal(std: NonNegative = 1.0, mean: float = 0.0) -> Code:
    require(std >= 0, f"normal needs std >= 0, got {std}")
    return Code(f"torch.randn({{shape}}) * {std!r} + {mean!r}")


@INITS.register("uniform", "independent Uniform(low, high) values", skip=0)
def uniform(low: float = -1.0, high: float = 1.0) -> Code:
    require(low < high, f"uniform needs low < high, got [{low}, {high}]")
    return Code(f"torch.empty({{shape}}).uniform_({low!r}, {high!r})")


@INITS.register("constant", "every value equal to `value`", skip=0)
def constant_init(value: float) -> Code:
    return Code(f"torch.full({{shape}}, {value!r})")


# ---- metrics of `evaluate` blocks and `gendsl evaluate --metric` ----
# `needs` names the model capability the checker requires (see graph/passes/roles.py).

@dataclass(frozen=True)
class MetricRule:
    needs: str
    options: dict[str, Any]


def _metric(name: str, doc: str, needs: str, runtime: str = ""):
    """A metric needing a model capability; its run-time function is gendsl.evaluation.metrics.NAME."""
    return METRICS.register(name, f"{doc} (needs {needs.replace('_', ' ')})", skip=0, tags=(needs,),
                            runtime=f"gendsl.evaluation.metrics:{runtime or name}")


def metric_needs(name: str) -> str:
    """The model capability a metric requires (see graph/passes/roles.py)."""
    return next(iter(METRICS[name].tags))


@_metric("elbo", "evidence lower bound per sample, in nats", "encoder")
def elbo() -> MetricRule:
    return MetricRule("encoder", {})


@_metric("iwae", "importance-weighted bound on log p(x) with k samples (Burda et al. 2016), nats",
         "encoder")
def iwae(k: Count = 5000) -> MetricRule:
    require(k >= 1, f"iwae needs k >= 1, got {k}")
    return MetricRule("encoder", dict(k=k))


@_metric("nll", "negative log-likelihood per sample in nats: exact where the model allows, "
         "else the IWAE bound", "likelihood")
def nll(k: Count = 5000) -> MetricRule:
    return MetricRule("likelihood", dict(k=k))


@_metric("bpd", "negative log-likelihood in bits per dimension", "likelihood", runtime="nll")
def bpd(k: Count = 5000) -> MetricRule:
    return MetricRule("likelihood", dict(k=k))


@_metric("bound", "the diffusion variational bound in nats and bits/dim, and its terms L_0, L_1..L_T-1 and L_T",
         "diffusion")
def bound() -> MetricRule:
    return MetricRule("diffusion", {})


@_metric("coverage", "modes covered, share of high-quality samples within k std, and reverse KL between the mode "
         "histograms of samples and held-out data (PacGAN)",
         "mode_data")
def coverage(k: Positive = 3.0, samples: Count = 2500) -> MetricRule:
    return MetricRule("mode_data", dict(k=k, samples=samples))


@_metric("recon", "reconstruction error of held-out data (squared and absolute; for a translation, "
         "beside copying the input)", "reconstruction")
def recon() -> MetricRule:
    return MetricRule("reconstruction", {})


@_metric("mmd", "maximum mean discrepancy between samples and held-out data (RBF kernel)",
         "samples")
def mmd(samples: Pairs = 2000) -> MetricRule:
    return MetricRule("samples", dict(samples=samples))


@_metric("swd", "sliced Wasserstein distance between samples and held-out data", "samples")
def swd(samples: Pairs = 2000, projections: Count = 128) -> MetricRule:
    return MetricRule("samples", dict(samples=samples, projections=projections))


@_metric("fid", "Frechet distance between samples and held-out images in the features of a classifier of the "
         "data set, trained once and cached (Heusel et al. 2017); beside it, the same between two halves of "
         "held-out images", "images")
def fid(samples: Pairs = 1000) -> MetricRule:
    return MetricRule("images", dict(samples=samples))


@_metric("kid", "kernel distance: unbiased cubic-kernel MMD, mean and std over subsets of at most half the "
         "samples, in the classifier's features of fid (Binkowski et al. 2018); beside it, the same between two "
         "halves of held-out images", "images")
def kid(samples: Pairs = 1000, subsets: Count = 100, subset_size: Pairs = 100) -> MetricRule:
    return MetricRule("images", dict(samples=samples, subsets=subsets, subset_size=subset_size))


@_metric("prd", "improved precision and recall: the share of samples inside the k-NN balls of held-out images, "
         "and of held-out images inside those of samples, in the classifier's features of fid (Kynkaanniemi et "
         "al. 2019); beside them, the same for two halves of held-out images", "images")
def prd(samples: Pairs = 1000, k: Count = 3) -> MetricRule:
    return MetricRule("images", dict(samples=samples, k=k))


@_metric("viterbi", "the most probable path of a latent chain for each held-out sequence (Viterbi): its log "
         "p(x, z) and, beside the true states on the data line, the share of steps it decodes right", "chain")
def viterbi() -> MetricRule:
    return MetricRule("chain", {})


@_metric("accuracy", "share of held-out rows whose label has the lowest energy F(x, y) of all labels",
         "classifier")
def accuracy() -> MetricRule:
    return MetricRule("classifier", {})


@_metric("losses", "every loss of the model on held-out data", "losses")
def loss_metric() -> MetricRule:
    return MetricRule("losses", {})
