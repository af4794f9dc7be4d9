"""Drawing samples from a trained model into pictures: grids and scatter plots, latent
interpolations (rows between two draws) and traversals (one latent dimension varied)."""

from __future__ import annotations

from pathlib import Path

import torch

from gendsl.diagnostics import GendslError, error
from gendsl.train.data import Group, load_split
from gendsl.train.images import as_images, save_grid, save_samples


def held_out(spec: dict, device: torch.device, split: str = "valid") -> list[Group]:
    return load_split(spec, split, device)


def held_out_batch(groups: list[Group], n: int) -> dict[str, torch.Tensor]:
    out = {}
    for group in groups:
        index = torch.arange(n, device=group.tensors[0].device) % len(group)
        for name, tensor in zip(group.names, group.tensors):
            out[name] = tensor[index]
    return out


def choose(spec: dict, name: str | None) -> tuple[str, dict]:
    samples = spec["samples"]
    if not samples:
        raise GendslError(error("E312", f"model {spec['model']} has no `sample` statement",
                                hint="add e.g. `sample x = G(z)` or `sample x ~ p(x | z)` to the spec"))
    if name is None:
        return next(iter(samples.items()))
    if name not in samples:
        raise GendslError(error("E505", f"no sample named '{name}'", hint=f"samples: {', '.join(samples)}"))
    return name, samples[name]


@torch.no_grad()
def draw(model, spec: dict, name: str, n: int, groups: list[Group] | None, mean: bool = False,
         latents: dict | None = None) -> torch.Tensor:
    info = spec["samples"][name]
    batch = held_out_batch(groups, n) if info["needs_batch"] and groups else None
    return getattr(model, info["method"])(n, batch, mean, latents)


def default_count(info: dict) -> int:
    """64 images for a grid; 2,500 points for a 2-D scatter plot (PacGAN's sample size)."""
    return 2500 if info["shape"] in ([2], [1, 2]) else 64


def write_samples(model, spec: dict, path: Path, groups: list[Group] | None, n: int | None = None,
                  name: str | None = None, mean: bool = False) -> Path | None:
    name, info = choose(spec, name)
    n = n or default_count(info)
    x = draw(model, spec, name, n, groups, mean).float().cpu().numpy()
    reference = None
    if groups and info["shape"] == [2]:
        first = next((g.tensors[g.names.index(name)] for g in groups if name in g.names), None)
        reference = first.float().cpu().numpy() if first is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path if save_samples(x, path, reference, title=f"{spec['model']}: {n} samples of {name}") else None


def latent_rows(spec: dict, info: dict, latent: str | None) -> str:
    latents = info.get("latents", [])
    if not latents:
        raise GendslError(error("E505", f"sample {info['method'][7:]} has no latent variable to move",
                                hint="interpolation and traversal need a sample with a latent, e.g. G(z)"))
    if latent is None:
        return latents[0]
    if latent not in latents:
        raise GendslError(error("E505", f"--traverse {latent}: not a latent of this sample",
                                hint=f"latents: {', '.join(latents)}"))
    return latent


@torch.no_grad()
def interpolation(model, spec: dict, path: Path, rows: int = 8, columns: int = 10, name: str | None = None,
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
def traversal(model, spec: dict, path: Path, latent: str | None, dims: int = 8, columns: int = 9,
              span: float = 3.0, name: str | None = None, mean: bool = True) -> Path:
    """Row i varies latent dimension i from -span to +span, every other dimension held fixed."""
    name, info = choose(spec, name)
    latent = latent_rows(spec, info, latent)
    prior = getattr(model, f"prior_{latent}")()
    base = prior.sample((1,))[0].flatten()
    dims = min(dims, base.numel())
    values = torch.linspace(-span, span, columns, device=base.device)
    z = base.repeat(dims * columns, 1)
    for d in range(dims):
        z[d * columns:(d + 1) * columns, d] = values
    return _grid(model, spec, name, z.view(dims * columns, *prior.event_shape), latent, path, columns, mean)


def _grid(model, spec, name, z, latent, path, columns, mean) -> Path:
    x = draw(model, spec, name, len(z), None, mean, {latent: z}).float().cpu().numpy()
    images = as_images(x)
    if images is None:
        raise GendslError(error("E505", f"sample {name} is {spec['samples'][name]['shape']}, not an image",
                                hint="interpolation and traversal grids need image samples"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, path, columns=columns)
    return path
