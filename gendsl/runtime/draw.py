"""Drawing samples from a trained model into pictures: grids and scatter plots, latent
interpolations (rows between two draws) and traversals (one latent dimension varied)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gendsl.diagnostics import Diagnostic, GendslError, error, warning
from gendsl.spec import RunSpec, Sample
from gendsl.runtime.data import Group, held_out_rows, load_split
from gendsl.runtime.images import as_images, save_grid, save_samples


def held_out(spec: RunSpec, device: torch.device, split: str = "valid") -> list[Group]:
    return load_split(spec, split, device)


def choose(spec: RunSpec, name: str | None) -> tuple[str, Sample]:
    samples = spec.samples
    if not samples:
        raise GendslError(error("E312", f"model {spec.model} has no `sample` statement",
                                hint="add e.g. `sample x = G(z)` or `sample x ~ p(x | z)` to the spec"))
    if name is None:
        return next(iter(samples.items()))
    if name not in samples:
        raise GendslError(error("E505", f"no sample named '{name}'", hint=f"samples: {', '.join(samples)}"))
    return name, samples[name]


@torch.no_grad()
def draw(model, spec: RunSpec, name: str, n: int, groups: list[Group] | None, mean: bool = False,
         latents: dict | None = None) -> torch.Tensor:
    info = spec.samples[name]
    batch = held_out_rows(groups, n) if info.needs_batch and groups else None
    return getattr(model, info.method)(n, batch, mean, latents).detach()  # a mean may be a parameter itself


def shows_means(info: Sample) -> bool:
    """Whether training's sample grids show means rather than draws. Means, as papers show them,
    where something else makes the samples differ (latents, held-out inputs). Without it, as in an
    autoregressive model, every sample's chain of means is the same image: draws then."""
    return bool(info.latents or info.data or info.needs_batch)


def default_count(info: Sample) -> int:
    """64 images for a grid; 2,500 points for a 2-D scatter plot (PacGAN's sample size)."""
    return 2500 if info.shape in ((2,), (1, 2)) else 64


def non_finite(x, name: str) -> Diagnostic | None:
    """A warning when samples hold NaN or infinite values (drawn black in a grid), else None."""
    bad = int((~np.isfinite(x)).reshape(len(x), -1).any(1).sum())
    if not bad:
        return None
    return warning("W412", f"{bad} of the {len(x)} samples of {name} hold NaN or infinite values (drawn black)",
                   hint="the model is not trained enough to sample from, or it diverged: check the losses "
                        "(losses.png), train longer, or sample from a later checkpoint")


def write_samples(model, spec: RunSpec, path: Path, groups: list[Group] | None, n: int | None = None,
                  name: str | None = None, mean: bool = False, notes: list | None = None) -> Path:
    """The samples' picture at `path`; a warning about non-finite samples goes to `notes` if given."""
    name, info = choose(spec, name)
    n = n or default_count(info)
    x = draw(model, spec, name, n, groups, mean).float().cpu().numpy()
    found = non_finite(x, name)
    if found is not None and notes is not None and not any(d.code == found.code for d in notes):
        notes.append(found)
    if info.kind == "cat" and info.classes > 1:
        x = x / (info.classes - 1)  # levels 0 .. K - 1 as gray levels (the categorical digits)
    reference = None
    if groups and info.shape == (2,):
        first = next((g.tensors[g.names.index(name)] for g in groups if name in g.names), None)
        reference = first.float().cpu().numpy() if first is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    save_samples(x, path, reference, title=f"{spec.model}: {n} samples of {name}")
    return path


def is_label(spec: RunSpec, latent: str) -> bool:
    """A latent that is one category per sample (`cat[K]`): a traversal shows each of its values."""
    var = spec.latents[latent]
    return var.kind == "cat" and var.shape == ()


def latent_rows(spec: RunSpec, info: Sample, latent: str | None, labels: bool = False) -> str:
    """The latent an interpolation or traversal moves: a real-valued one (labels have no line
    between two values), or for a traversal (`labels`) also a category label."""
    latents = [name for name in info.latents
               if spec.latents[name].kind == "real" or (labels and is_label(spec, name))]
    if not latents:
        found = ", ".join(f"{n}: {spec.latents[n].kind}" for n in info.latents) or "none"
        raise GendslError(error("E505", f"sample {info.method[7:]} has no real-valued latent to move (latents: "
                                f"{found})", hint="interpolation and traversal move a latent such as "
                                "`latent z: real[16]`; a category label has no values in between"))
    if latent is None:
        return latents[0]
    if latent not in latents:
        raise GendslError(error("E505", f"--traverse {latent}: not a real-valued latent or a category label of "
                                "this sample", hint=f"latents it can traverse: {', '.join(latents)}"))
    return latent


@torch.no_grad()
def interpolation(model, spec: RunSpec, path: Path, rows: int = 8, columns: int = 10, name: str | None = None,
                  mean: bool = True) -> Path:
    """Each row walks in a straight line between two draws of the latent."""
    name, info = choose(spec, name)
    latent = latent_rows(spec, info, None)
    prior = getattr(model, f"prior_{latent}")()
    a, b = prior.sample((rows,)), prior.sample((rows,))
    steps = torch.linspace(0, 1, columns, device=a.device).view(1, columns, *([1] * (a.dim() - 1)))
    z = (a[:, None] * (1 - steps) + b[:, None] * steps).flatten(0, 1)
    return _grid(model, spec, name, z, latent, path, columns, mean)


@torch.no_grad()
def traversal(model, spec: RunSpec, path: Path, latent: str | None, dims: int = 8, columns: int = 9,
              span: float = 3.0, name: str | None = None, mean: bool = True) -> Path:
    """Each row varies one latent dimension from -span to +span, every other one held fixed; the
    rows show the dimensions whose change moves the output most (many VAE dimensions are inactive),
    most active first."""
    name, info = choose(spec, name)
    latent = latent_rows(spec, info, latent, labels=True)
    if is_label(spec, latent):
        return label_traversal(model, spec, info, path, latent, dims, name, mean)
    prior = getattr(model, f"prior_{latent}")()
    base = prior.sample((1,))[0].flatten()
    values = torch.linspace(-span, span, columns, device=base.device)
    chosen = most_active(model, spec, name, latent, base, span, prior.event_shape)[:dims]
    z = base.repeat(len(chosen) * columns, 1)
    for row, d in enumerate(chosen):
        z[row * columns:(row + 1) * columns, d] = values
    return _grid(model, spec, name, z.view(len(z), *prior.event_shape), latent, path, columns, mean)


def label_traversal(model, spec: RunSpec, info: Sample, path: Path, latent: str, rows: int, name: str,
                    mean: bool) -> Path:
    """Column k shows label value k (InfoGAN's figures); each row holds one draw of the other latents."""
    classes = spec.latents[latent].classes
    others = {}
    for other in info.latents:
        if other != latent:
            drawn = getattr(model, f"prior_{other}")().sample((rows,))
            others[other] = drawn.repeat_interleave(classes, 0)
    codes = torch.arange(classes, device=next(iter(others.values())).device if others else None).repeat(rows)
    x = draw(model, spec, name, rows * classes, None, mean, {latent: codes, **others}).float().cpu().numpy()
    return _save_grid(spec, name, x, path, classes)


def most_active(model, spec: RunSpec, name: str, latent: str, base: torch.Tensor, span: float, shape) -> list[int]:
    """Latent dimensions ordered by how far the output moves between -span and +span."""
    size = base.numel()
    low, high = base.repeat(size, 1), base.repeat(size, 1)
    low[range(size), range(size)] = -span
    high[range(size), range(size)] = span
    z = torch.cat([low, high]).view(2 * size, *shape)
    out = draw(model, spec, name, 2 * size, None, True, {latent: z}).float().reshape(2 * size, -1)
    change = (out[:size] - out[size:]).abs().mean(1)
    return torch.argsort(change, descending=True).tolist()


def _grid(model, spec, name, z, latent, path, columns, mean) -> Path:
    x = draw(model, spec, name, len(z), None, mean, {latent: z}).float().cpu().numpy()
    return _save_grid(spec, name, x, path, columns)


def _save_grid(spec, name, x, path, columns) -> Path:
    images = as_images(x)
    if images is None:
        raise GendslError(error("E505", f"sample {name} is {list(spec.samples[name].shape)}, not an image",
                                hint="interpolation and traversal grids need image samples"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, path, columns=columns)
    return path
