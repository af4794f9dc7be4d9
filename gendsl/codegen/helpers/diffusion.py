"""Gaussian diffusion: the forward process, the simple loss (with label dropout), ancestral DDPM
sampling, DDIM sampling, classifier-free guidance and the variational bound; with learned reverse
variances (Nichol & Dhariwal 2021), the hybrid loss and the bound of the learned variances; the bound
itself as a loss, its steps drawn by importance sampling (Nichol & Dhariwal 2021, section 3.3).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import math

import torch
import torch.distributions as D
import torch.nn as nn

from gendsl.codegen.helpers.basic import mse


class GaussianDiffusion(nn.Module):
    """DDPM (Ho et al. 2020) and DDIM (Song et al. 2021). Step index s = 0..T-1 stands for the
    papers' t = s + 1: `bar[s]` is alpha-bar_t and `bar_prev[s]` is alpha-bar_{t-1} (1 at s = 0).
    Every sampler takes the noise prediction as a function eps(x_t, t); a conditional denoiser is
    turned into one by `conditioned`.

    With `learned` variances the denoiser's output holds two halves along its first per-sample axis:
    the noise prediction, then v, which sets the reverse variance of each value to
    Sigma_t = exp(v log beta_t + (1 - v) log beta-tilde_t) (Nichol & Dhariwal 2021, eq. 15;
    beta-tilde_1 = 0 is replaced by beta-tilde_2 in the logarithm, as their code does)."""

    HISTORY = 10           # the L_t values kept per step for importance sampling (Nichol & Dhariwal 2021)
    UNIFORM_SHARE = 0.001  # as their code: every p_t stays above 0, so the estimate stays unbiased

    def __init__(self, steps, betas, levels=0, learned=False):
        super().__init__()
        self.levels = levels  # > 1: data quantized to `levels` values in [0, 1] (discretized decoder)
        self.learned = learned
        alphas = 1 - betas
        bar = torch.cumprod(alphas, 0)
        bar_prev = torch.cat([torch.ones(1, dtype=betas.dtype), bar[:-1]])
        self.steps = steps
        post_var = betas * (1 - bar_prev) / (1 - bar)
        for name, value in dict(betas=betas, alphas=alphas, bar=bar, bar_prev=bar_prev, post_var=post_var).items():
            self.register_buffer(name, value.float())
        # derived, so not saved: older checkpoints still load. The square roots are taken of the
        # float32 tables, as `noisy` took them every step before they were tables.
        derived = dict(log_betas=betas.log().float(),
                       log_post_var=torch.cat([post_var[1:2], post_var[1:]]).log().float(),
                       sqrt_bar=self.bar.sqrt(), sqrt_one_minus_bar=(1 - self.bar).sqrt())
        for name, value in derived.items():
            self.register_buffer(name, value, persistent=False)
        # the last HISTORY values of each L_t (`vlb` with importance sampling): saved, so a resumed run
        # keeps its step distribution; a checkpoint from before they existed loads with them empty
        self.register_buffer("loss_history", torch.zeros(steps, self.HISTORY))
        self.register_buffer("loss_counts", torch.zeros(steps, dtype=torch.long))
        self.register_load_state_dict_pre_hook(GaussianDiffusion._fill_history)

    @staticmethod
    def _fill_history(module, state, prefix, *_):
        for name in ("loss_history", "loss_counts"):
            state.setdefault(prefix + name, getattr(module, name))

    @staticmethod
    def linear(steps, start, end):
        return torch.linspace(start, end, steps, dtype=torch.float64)

    @staticmethod
    def cosine(steps, s):
        t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)

    def conditioned(self, eps, label, guidance=0.0, null=0):
        """eps(x_t, t) of a conditional denoiser at `label`. With guidance w > 0, classifier-free
        guidance (Ho & Salimans 2022, eq. 6): (1 + w) eps(x_t, t, y) - w eps(x_t, t, null), both
        predictions from one call on a doubled batch; learned variances are the label's own."""
        def predict(x, t):
            if guidance == 0:
                return eps(x, t, label)
            labels = torch.cat([label, torch.full_like(label, null)])
            cond, free = eps(torch.cat([x, x]), torch.cat([t, t]), labels).chunk(2)
            if not self.learned:
                return (1 + guidance) * cond - guidance * free
            (cond, v), (free, _) = self.split(cond), self.split(free)
            return torch.cat([(1 + guidance) * cond - guidance * free, v], 1)
        return predict

    def split(self, out):
        """The noise prediction and, with learned variances, v: the two halves of the output's
        first per-sample axis (None when the variances are fixed)."""
        return out.chunk(2, 1) if self.learned else (out, None)

    def log_var(self, v, t, x):
        """log Sigma_t of the reverse step t: log beta-tilde_t when fixed, else the interpolation by v."""
        if v is None:
            return self._at(self.log_post_var, t, x).expand_as(x)
        return v * self._at(self.log_betas, t, x) + (1 - v) * self._at(self.log_post_var, t, x)

    def _at(self, values, t, x):
        return values[t].view(-1, *([1] * (x.dim() - 1)))

    def noisy(self, x0, t, noise):
        """x_t = sqrt(alpha-bar_t) x0 + sqrt(1 - alpha-bar_t) noise (Ho et al. 2020, eq. 4)."""
        return self._at(self.sqrt_bar, t, x0) * x0 + self._at(self.sqrt_one_minus_bar, t, x0) * noise

    def loss(self, eps, x0, label=None, drop=0.0, null=0, vlb=0.001):
        """Per-sample mean squared error of the predicted noise at a uniform random step. A
        conditional denoiser sees its label, replaced by the null class with probability `drop`
        (label dropout, Ho & Salimans 2022), so that it also learns the unconditional prediction.
        With learned variances, the hybrid loss of `hybrid`, with lambda = `vlb`."""
        t = torch.randint(0, self.steps, (x0.shape[0],), device=x0.device)
        out, xt, noise = self._denoise(eps, x0, t, label, drop, null)
        return self.hybrid(out, x0, xt, t, noise, vlb)

    def _denoise(self, eps, x0, t, label, drop, null):
        """The denoiser's output at x_t for fresh noise (the label dropped to `null` with probability `drop`)."""
        noise = torch.randn_like(x0)
        xt = self.noisy(x0, t, noise)
        if label is not None and drop > 0:
            dropped = torch.rand(label.shape, device=label.device) < drop
            label = torch.where(dropped, torch.full_like(label, null), label)
        return (eps(xt, t) if label is None else eps(xt, t, label)), xt, noise

    def vlb(self, eps, x0, label=None, drop=0.0, null=0, importance=True):
        """The bound as the loss (Nichol & Dhariwal 2021, L_vlb): per sample L_t / (p_t D) at a step t
        drawn with probability p_t, an unbiased estimate of the sum over t of L_t (L_T, constant, left
        out) per value, in nats. The noise prediction gets the bound's gradient too (not detached, as in
        `hybrid`). `importance`: p_t from `step_probs`, else uniform (p_t = 1/T)."""
        p = self.step_probs() if importance else torch.full((self.steps,), 1 / self.steps, device=x0.device)
        t = torch.multinomial(p, x0.shape[0], replacement=True)
        return self.vlb_at(eps, x0, t, p, label, drop, null, record=importance)

    def vlb_at(self, eps, x0, t, p, label=None, drop=0.0, null=0, record=False):
        """`vlb` at the given steps t, drawn with probabilities p; `record` keeps the L_t for `step_probs`."""
        out, xt, _ = self._denoise(eps, x0, t, label, drop, null)
        pred, v = self.split(out)
        term = self.term(x0, xt, t, self.mean(xt, t, pred), self.bound_log_var(v, t, x0))
        if record and self.training and torch.is_grad_enabled():  # validation and evaluation leave it alone
            self.record(t, term.detach())
        return term / (p[t] * x0[0].numel())

    def step_probs(self):
        """p_t proportional to sqrt(E[L_t^2]) over the last HISTORY values of each L_t, mixed with a share
        UNIFORM_SHARE of uniform; uniform until every step has HISTORY values (Nichol & Dhariwal 2021,
        section 3.3). Chosen on the device: no host sync."""
        uniform = torch.full((self.steps,), 1 / self.steps, device=self.loss_history.device)
        rms = self.loss_history.pow(2).mean(1).sqrt()
        p = rms / rms.sum().clamp_min(1e-30) * (1 - self.UNIFORM_SHARE) + self.UNIFORM_SHARE / self.steps
        return torch.where((self.loss_counts >= self.HISTORY).all(), p, uniform)

    @torch.no_grad()
    def record(self, t, terms):
        """Append each L_t to its step's ring of HISTORY values. A step drawn k times in the batch fills
        k consecutive slots in batch order, only its last HISTORY draws when k > HISTORY (they would
        overwrite the earlier ones), so every slot is written at most once: a scatter, no host sync."""
        seen = nn.functional.one_hot(t, self.steps)
        rank = (seen.cumsum(0) * seen).sum(1) - 1            # earlier draws of the same step in this batch
        drawn = seen.sum(0)
        slot = t * self.HISTORY + (self.loss_counts[t] + rank) % self.HISTORY
        spare = self.loss_history.numel()                     # where the overwritten draws go
        slot = torch.where(rank >= drawn[t] - self.HISTORY, slot, spare)
        flat = torch.cat([self.loss_history.flatten(), self.loss_history.new_zeros(1)])
        flat.scatter_(0, slot, terms.to(flat.dtype))
        self.loss_history.copy_(flat[:spare].view_as(self.loss_history))
        self.loss_counts += drawn

    def bound_log_var(self, v, t, x):
        """log Sigma_t as `terms` takes it: learned, or fixed at beta-tilde_t with the decoder's beta_1."""
        if v is not None:
            return self.log_var(v, t, x)
        first = (t == 0).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(first, self._at(self.log_betas, t, x), self._at(self.log_post_var, t, x)).expand_as(x)

    def hybrid(self, out, x0, xt, t, noise, vlb=0.001):
        """The per-sample loss of the denoiser's output at steps t. Fixed variances: L_simple, the
        mean squared error of the noise. Learned: L_simple + vlb * T * L_t / D (Nichol & Dhariwal
        2021, eq. 16, lambda = vlb), where L_t is the bound's term at t in nats (KL or the decoder's
        -log p(x0 | x1)) computed with the noise prediction detached, so that it trains v alone,
        T * L_t estimates the sum over t, and D, the values per sample, puts it per value as L_simple."""
        pred, v = self.split(out)
        simple = mse(pred, noise)
        if v is None:
            return simple
        term = self.term(x0, xt, t, self.mean(xt, t, pred.detach()), self.log_var(v, t, x0))
        return simple + vlb * self.steps * term / x0[0].numel()

    def mean(self, x, t, pred):
        """The reverse step's mean given the noise prediction (Ho et al. 2020, eq. 11)."""
        return (x - self._at(self.betas, t, x) / self._at(self.sqrt_one_minus_bar, t, x) * pred) \
            / self._at(self.alphas, t, x).sqrt()

    def _mean(self, eps, x, t):
        return self.mean(x, t, self.split(eps(x, t))[0])

    def posterior_mean(self, x0, xt, t):
        """The mean of q(x_(t-1) | x_t, x0) (Ho et al. 2020, eq. 7)."""
        return (self._at(self.bar_prev, t, x0).sqrt() * self._at(self.betas, t, x0) * x0
                + self._at(self.alphas, t, x0).sqrt() * (1 - self._at(self.bar_prev, t, x0)) * xt) \
            / (1 - self._at(self.bar, t, x0))

    def term(self, x0, xt, t, mean, log_var):
        """The bound's term at steps t per sample (nats), with p(x_(t-1) | x_t) = N(mean, exp(log_var)):
        L_0 = -log p(x0 | x1) where t is the first step, else KL(q(x_(t-1) | x_t, x0) || p(x_(t-1) | x_t))."""
        dims = tuple(range(1, x0.dim()))
        posterior = D.Normal(self.posterior_mean(x0, xt, t), (0.5 * self._at(self.log_post_var, t, x0)).exp())
        kl = D.kl_divergence(posterior, D.Normal(mean, (0.5 * log_var).exp()))
        first = (t == 0).view(-1, *([1] * (x0.dim() - 1)))
        return torch.where(first, self._decoder_nll(x0, mean, log_var.exp()), kl).sum(dims)

    @torch.no_grad()
    def reverse(self, eps, n, shape, device):
        """Ancestral sampling (Ho et al. 2020, algorithm 2, variance beta-tilde), all n chains at once."""
        x = torch.randn(n, *shape, device=device)
        for step in reversed(range(self.steps)):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            pred, v = self.split(eps(x, t))
            mean = self.mean(x, t, pred)
            if step == 0:
                x = mean
            elif v is None:
                x = mean + self._at(self.post_var, t, x).sqrt() * torch.randn_like(x)
            else:
                x = mean + (0.5 * self.log_var(v, t, x)).exp() * torch.randn_like(x)
        return x

    def ddim_steps(self, steps):
        """The DDIM sub-sequence tau, last step first: `steps` evenly spaced step indices from
        T - 1 down to 0, rounded half up (one step: T - 1 alone)."""
        if steps == 1:
            return [self.steps - 1]
        span, gaps = self.steps - 1, steps - 1
        return [(2 * span * (gaps - i) + gaps) // (2 * gaps) for i in range(steps)]

    def ddim_update(self, x, pred, a_t, a_prev, eta, noise):
        """One DDIM step (Song et al. 2021, eq. 12), sigma from eq. 16 scaled by eta."""
        x0 = (x - (1 - a_t).sqrt() * pred) / a_t.sqrt()
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        direction = (1 - a_prev - sigma ** 2).clamp_min(0).sqrt() * pred
        return a_prev.sqrt() * x0 + direction + sigma * noise

    @torch.no_grad()
    def ddim(self, eps, n, shape, device, steps, eta):
        """DDIM sampling over `steps` steps of the process. eta = 0: deterministic from the
        starting noise; eta = 1 with all T steps: ancestral sampling, draw for draw."""
        x = torch.randn(n, *shape, device=device)
        tau = self.ddim_steps(steps)
        for i, step in enumerate(tau):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            a_t = self._at(self.bar, t, x)
            last = i + 1 == len(tau)
            a_prev = torch.ones_like(a_t) if last else self._at(self.bar, torch.full_like(t, tau[i + 1]), x)
            pred = self.split(eps(x, t))[0]  # DDIM sets its own variances: learned ones are not used
            noise = torch.zeros_like(x) if last or eta == 0 else torch.randn_like(x)
            x = self.ddim_update(x, pred, a_t, a_prev, eta, noise)
        return x

    @torch.no_grad()
    def bound(self, eps, x0):
        """Negative variational bound per sample (nats): the sum of its terms."""
        return self.terms(eps, x0).sum(-1)

    @torch.no_grad()
    def terms(self, eps, x0):
        """The bound's terms per sample, [n, 3] (nats): L_0 = -log p(x0 | x1), a Gaussian decoder
        of variance beta_1; the sum over t = 2..T of L_(t-1) = KL(q(x_(t-1) | x_t, x0) || p(x_(t-1) | x_t));
        and L_T = KL(q(x_T | x0) || N(0, I)). With learned variances, p's variance at each step (the
        decoder's included) is the learned Sigma_t."""
        decoder = torch.zeros(x0.shape[0], device=x0.device)
        middle = torch.zeros(x0.shape[0], device=x0.device)
        dims = tuple(range(1, x0.dim()))
        for step in range(self.steps):
            t = torch.full((x0.shape[0],), step, device=x0.device, dtype=torch.long)
            xt = self.noisy(x0, t, torch.randn_like(x0))
            pred, v = self.split(eps(xt, t))
            mean = self.mean(xt, t, pred)
            if v is not None:
                (decoder if step == 0 else middle).add_(self.term(x0, xt, t, mean, self.log_var(v, t, x0)))
            elif step == 0:
                decoder += self._decoder_nll(x0, mean, self._at(self.betas, t, x0)).sum(dims)
            else:
                scale = self._at(self.post_var, t, x0).sqrt()
                middle += D.kl_divergence(D.Normal(self.posterior_mean(x0, xt, t), scale),
                                          D.Normal(mean, scale)).sum(dims)
        bar_T = self.bar[-1]
        last = D.Normal(bar_T.sqrt() * x0, (1 - bar_T).sqrt())   # q(x_T | x0)
        prior = D.kl_divergence(last, D.Normal(torch.zeros_like(x0), torch.ones_like(x0)))
        return torch.stack([decoder, middle, prior.sum(dims)], -1)

    def _decoder_nll(self, x0, mean, var):
        """-log p(x0 | x1): a Gaussian density, or for quantized data the probability of x0's bin
        (Ho et al. 2020, eq. 13; the outer bins reach to infinity)."""
        normal = D.Normal(mean, var.sqrt())
        if self.levels < 2:
            return -normal.log_prob(x0)
        half = 0.5 / (self.levels - 1)
        upper = torch.where(x0 >= 1 - half, torch.ones_like(x0), normal.cdf(x0 + half))
        lower = torch.where(x0 <= half, torch.zeros_like(x0), normal.cdf(x0 - half))
        return -torch.log((upper - lower).clamp_min(1e-12))
