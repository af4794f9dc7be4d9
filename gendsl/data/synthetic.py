"""Synthetic 2-D data sets; ring and grid have a known density, entropy and set of modes.

ring and grid are equal-weight mixtures of isotropic Gaussians, so their exact log density,
their differential entropy (the test NLL floor no density model can beat) and their mode
centres (for GAN mode coverage, as in PacGAN and VEEGAN) are available here as well.
Every sampler takes an explicit seed and its own numpy Generator, so draws are reproducible and
independent of any global random state. Samples are float32; densities are computed in float64.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from gendsl.data import DataError, check_arrays, require_float, require_int

# Rows per block when forming (rows x modes) distance tables, so memory stays bounded.
_CHUNK = 65536


def ring(n: int, seed: int, modes: int = 8, radius: float = 2.0,
         std: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight mixture of `modes` isotropic Gaussians equally spaced on a circle; the points
    and the mode each was drawn from."""
    centres, std = ring_modes(modes, radius, std)
    return _labelled_output("ring", *_draw_mixture("ring", n, seed, centres, std))


def grid(n: int, seed: int, side: int = 5, spacing: float = 2.0,
         std: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight mixture of side*side isotropic Gaussians on a square grid centred at 0; the
    points and the mode each was drawn from."""
    centres, std = grid_modes(side, spacing, std)
    return _labelled_output("grid", *_draw_mixture("grid", n, seed, centres, std))


def moons(n: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray]:
    """Two interleaving half circles (as sklearn's make_moons) with Gaussian noise."""
    n = require_int("moons", "n", n, minimum=1)
    noise = require_float("moons", "noise", noise)
    rng = np.random.default_rng(seed)
    # Random angle and moon per row (not sklearn's linspace), so rows are i.i.d. draws.
    t = rng.uniform(0.0, math.pi, n)
    inner = rng.random(n) < 0.5
    x = np.where(inner, 1.0 - np.cos(t), np.cos(t))
    y = np.where(inner, 0.5 - np.sin(t), np.sin(t))
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return _as_output("moons", points)


def circles(n: int, seed: int, noise: float = 0.05, factor: float = 0.5) -> tuple[np.ndarray]:
    """A unit circle and a concentric circle of radius `factor`, with Gaussian noise."""
    n = require_int("circles", "n", n, minimum=1)
    noise = require_float("circles", "noise", noise)
    factor = require_float("circles", "factor", factor, positive=True)
    if factor >= 1.0:
        raise DataError("E405", f"circles: argument 'factor' must be below 1, found {factor!r}",
                        "factor is the inner radius relative to the outer one, e.g. factor=0.5")
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 2.0 * math.pi, n)
    radius = np.where(rng.random(n) < 0.5, factor, 1.0)
    points = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return _as_output("circles", points + noise * rng.standard_normal((n, 2)))


def swiss_roll(n: int, seed: int, noise: float = 0.25) -> tuple[np.ndarray]:
    """2-D swiss roll: t = 1.5*pi*(1 + 2u), point (t cos t, t sin t) / 5 plus Gaussian noise."""
    n = require_int("swiss_roll", "n", n, minimum=1)
    noise = require_float("swiss_roll", "noise", noise)
    rng = np.random.default_rng(seed)
    t = 1.5 * math.pi * (1.0 + 2.0 * rng.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    return _as_output("swiss_roll", points + noise * rng.standard_normal((n, 2)))


def modes(name: str, **kwargs: Any) -> tuple[np.ndarray, float]:
    """Mode centres (M, 2) and the per-mode std of a source with a known density (ring, grid)."""
    builder = _mixture_builder(name)
    accepted = list(inspect.signature(builder).parameters)
    for key in kwargs:
        if key not in accepted:
            raise DataError("E405", f"{name} has no argument {key!r}; it accepts: {', '.join(accepted)}",
                            f"use only {', '.join(accepted)}")
    return builder(**kwargs)


def log_density(name: str, x: np.ndarray, labels: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
    """Exact log density (float64, one value per row) of points x (N, 2) under ring or grid, or
    given `labels`, each point's own mode: log p(x | y). Sequences (hmm) have their own density."""
    if name in SEQUENCE_DENSITIES:
        return SEQUENCE_DENSITIES[name][0](x, **kwargs)
    centres, std = modes(name, **kwargs)
    points = np.asarray(x, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise DataError("E403", f"log_density: expected points of shape (N, 2), found {points.shape}",
                        "pass one 2-D point per row")
    if labels is None:
        return _mixture_log_density(points, centres, std)
    return _mode_log_density(points, centres[np.asarray(labels).reshape(-1)], std)


def entropy(name: str, n: int = 1_000_000, seed: int = 12345, conditional: bool = False, **kwargs: Any) -> float:
    """Monte-Carlo estimate (nats) of the differential entropy of ring or grid, mean -log p(x), or
    with `conditional`, of x given its mode, mean -log p(x | y). Sequences (hmm) have their own."""
    if name in SEQUENCE_DENSITIES:
        return SEQUENCE_DENSITIES[name][1](n, seed, **kwargs)
    centres, std = modes(name, **kwargs)
    points, labels = _draw_mixture(name, n, seed, centres, std)
    if conditional:
        return float(-_mode_log_density(points, centres[labels], std).mean())
    return float(-_mixture_log_density(points, centres, std).mean())


def coverage(samples: np.ndarray, centres: np.ndarray, std: float, k: float = 3.0,
             reference: np.ndarray | None = None) -> dict[str, Any]:
    """Mode coverage of samples (PacGAN/VEEGAN): modes hit within k*std, high-quality fraction,
    and with `reference` (real samples) PacGAN's reverse KL: KL(generated || real) between the
    histograms of the modes nearest to each sample (every sample, however far)."""
    points = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    centres = np.asarray(centres, dtype=np.float64)
    if centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise DataError("E403", f"coverage: samples of shape {points.shape} do not match mode centres "
                                f"of shape {centres.shape}", "pass samples (N, D) and centres (M, D)")
    nearest, distance = _nearest_centres(points, centres)
    good = distance <= k * std
    per_mode = np.bincount(nearest[good], minlength=len(centres))
    out = {
        "modes_covered": int((per_mode > 0).sum()),
        "high_quality": float(good.mean()) if len(points) else 0.0,
        "per_mode": [int(count) for count in per_mode],
    }
    if reference is not None:
        real = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
        out["reverse_kl"] = reverse_kl(nearest, _nearest_centres(real, centres)[0], len(centres))
    return out


def reverse_kl(generated: np.ndarray, real: np.ndarray, modes: int) -> float:
    """KL(p || q) in nats of the mode histograms p of generated and q of real samples (mode
    indices); inf when generated samples reach a mode no real sample does."""
    p = np.bincount(generated, minlength=modes) / max(len(generated), 1)
    q = np.bincount(real, minlength=modes) / max(len(real), 1)
    hit = p > 0
    if (q[hit] == 0).any():
        return math.inf
    return float((p[hit] * np.log(p[hit] / q[hit])).sum())


def ring_modes(modes: int = 8, radius: float = 2.0, std: float = 0.02) -> tuple[np.ndarray, float]:
    """The ring's mode centres and per-mode std."""
    modes = require_int("ring", "modes", modes, minimum=1)
    radius = require_float("ring", "radius", radius)
    std = require_float("ring", "std", std, positive=True)
    angles = 2.0 * math.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std


def grid_modes(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> tuple[np.ndarray, float]:
    """The grid's mode centres and per-mode std."""
    side = require_int("grid", "side", side, minimum=1)
    spacing = require_float("grid", "spacing", spacing)
    std = require_float("grid", "std", std, positive=True)
    axis = (np.arange(side) - (side - 1) / 2.0) * spacing
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1), std


def _mixture_builder(name: str) -> Callable[..., tuple[np.ndarray, float]]:
    """The modes function the source's registry entry names (`density`)."""
    from gendsl.library.entries import resolve_runtime
    from gendsl.library.sources import SOURCES

    entry = SOURCES.get(name)
    if entry is None or not entry.density:
        known = ", ".join(n for n, e in SOURCES.items() if e.density)
        raise DataError("E405", f"{name!r} has no known density or modes; only {known} do",
                        f"use {known} for log densities, entropies and mode coverage")
    return resolve_runtime(entry.density)


def _draw_mixture(source: str, n: int, seed: int, centres: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    n = require_int(source, "n", n, minimum=1)
    rng = np.random.default_rng(seed)
    component = rng.integers(len(centres), size=n)
    return centres[component] + std * rng.standard_normal((n, 2)), component


def _mixture_log_density(points: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    # log p(x) = logsumexp_k(-|x - c_k|^2 / (2 s^2)) - log M - log(2 pi s^2), in blocks of rows.
    log_norm = -math.log(len(centres)) - math.log(2.0 * math.pi * std * std)
    out = np.empty(len(points))
    for start in range(0, len(points), _CHUNK):
        block = points[start:start + _CHUNK]
        logits = -_squared_distances(block, centres) / (2.0 * std * std)
        top = logits.max(axis=1)
        out[start:start + len(block)] = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    return out + log_norm


def _mode_log_density(points: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    # log N(x; c, s^2 I) in 2-D, one centre per point
    return -((points - centres) ** 2).sum(axis=1) / (2.0 * std * std) - math.log(2.0 * math.pi * std * std)


def _nearest_centres(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nearest = np.empty(len(points), dtype=np.int64)
    distance = np.empty(len(points))
    for start in range(0, len(points), _CHUNK):
        squared = _squared_distances(points[start:start + _CHUNK], centres)
        index = squared.argmin(axis=1)
        nearest[start:start + len(index)] = index
        distance[start:start + len(index)] = np.sqrt(squared[np.arange(len(index)), index])
    return nearest, distance


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # Explicit differences rather than |x|^2 - 2xc + |c|^2, which cancels badly for tiny std.
    return ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


def _labelled_output(source: str, points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return check_arrays(source, {"x": points.astype(np.float32), "y": labels.astype(np.int64)})  # type: ignore


def _as_output(source: str, points: np.ndarray) -> tuple[np.ndarray]:
    return check_arrays(source, {"x": points.astype(np.float32)})  # type: ignore[return-value]


# ---- sequences from a known hidden Markov model ----

def hmm(n: int, seed: int, states: int = 4, symbols: int = 6, length: int = 20,
        truth: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n sequences (n, length) of symbols from the HMM that seed `truth` gives (hmm_parameters),
    and the hidden states (n, length) each was drawn from."""
    n = require_int("hmm", "n", n, minimum=1)
    init, trans, emit = hmm_parameters(states, symbols, truth)
    x, z = _draw_hmm(np.random.default_rng(seed), n, length, init, trans, emit)
    return check_arrays("hmm", {"x": x, "z": z})  # type: ignore[return-value]


def hmm_parameters(states: int = 4, symbols: int = 6, truth: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true model's initial (K,), transition (K, K) and emission (K, V) probabilities: sticky
    transitions (a state tends to persist, so the hidden chain matters) and peaked emissions."""
    states = require_int("hmm", "states", states, minimum=1)
    symbols = require_int("hmm", "symbols", symbols, minimum=2)
    rng = np.random.default_rng(require_int("hmm", "truth", truth, minimum=0))
    init = rng.dirichlet(np.ones(states))
    trans = np.stack([rng.dirichlet(np.ones(states) + 4.0 * (np.arange(states) == k)) for k in range(states)])
    emit = rng.dirichlet(0.5 * np.ones(symbols), size=states)
    return init, trans, emit


def hmm_log_density(x: np.ndarray, states: int = 4, symbols: int = 6, length: int = 20,
                    truth: int = 0) -> np.ndarray:
    """Exact log p(x) (float64, one value per sequence) of sequences x (N, length) under the true
    model: the forward algorithm in log space."""
    init, trans, emit = hmm_parameters(states, symbols, truth)
    x = np.asarray(x).astype(np.int64).reshape(len(x), -1)
    if x.shape[1] != length or (x.size and (x.min() < 0 or x.max() >= symbols)):
        raise DataError("E403", f"hmm log density: expected sequences (N, {length}) of symbols 0..{symbols - 1}, "
                        f"found shape {x.shape}", "pass one sequence per row")
    log_emit = np.log(emit).T[x]                                   # (N, T, K)
    log_trans = np.log(trans)
    alpha = np.log(init) + log_emit[:, 0]
    for t in range(1, x.shape[1]):
        alpha = _logsumexp(alpha[:, :, None] + log_trans[None], axis=1) + log_emit[:, t]
    return _logsumexp(alpha, axis=1)


def hmm_entropy(n: int = 200_000, seed: int = 12345, states: int = 4, symbols: int = 6, length: int = 20,
                truth: int = 0) -> float:
    """Monte-Carlo estimate (nats per sequence) of the entropy of the true model: mean -log p(x)."""
    init, trans, emit = hmm_parameters(states, symbols, truth)
    x, _ = _draw_hmm(np.random.default_rng(seed), n, length, init, trans, emit)
    return float(-hmm_log_density(x, states, symbols, length, truth).mean())


# Sources whose density is not a mixture's: log density and entropy functions by source name.
SEQUENCE_DENSITIES = {"hmm": (hmm_log_density, hmm_entropy)}


def _draw_hmm(rng: np.random.Generator, n: int, length: int, init: np.ndarray, trans: np.ndarray,
              emit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Ancestral sampling, every sequence at once: each step inverts the CDF of the row it is in.
    def pick(probs: np.ndarray) -> np.ndarray:
        return np.minimum((probs.cumsum(axis=1) < rng.random((len(probs), 1))).sum(axis=1), probs.shape[1] - 1)

    z = np.empty((n, length), dtype=np.int64)
    z[:, 0] = pick(np.broadcast_to(init, (n, len(init))))
    for t in range(1, length):
        z[:, t] = pick(trans[z[:, t - 1]])
    x = pick(emit[z.reshape(-1)]).reshape(n, length)
    return x, z


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def hmm_viterbi(x: np.ndarray, states: int = 4, symbols: int = 6, length: int = 20, truth: int = 0) -> np.ndarray:
    """The true model's most probable state path (N, length) for each sequence x (N, length)."""
    init, trans, emit = hmm_parameters(states, symbols, truth)
    x = np.asarray(x).astype(np.int64).reshape(len(x), -1)
    log_emit, log_trans = np.log(emit).T[x], np.log(trans)       # (N, T, K), (K, K)
    delta, back = np.log(init) + log_emit[:, 0], []
    for t in range(1, x.shape[1]):
        scores = delta[:, :, None] + log_trans[None]              # (N, from, to)
        back.append(scores.argmax(axis=1))
        delta = scores.max(axis=1) + log_emit[:, t]
    path = [delta.argmax(axis=1)]
    for pointers in reversed(back):
        path.append(np.take_along_axis(pointers, path[-1][:, None], axis=1)[:, 0])
    return np.stack(path[::-1], axis=1)
