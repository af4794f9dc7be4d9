"""Markov chains of labels and hidden Markov models: a chain prior whose paths are summed out by
the forward algorithm and maximized over by Viterbi, both in log space (Rabiner 1989).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import torch


class MarkovChain:
    """A chain of `length` labels out of K: z_1 ~ softmax(init), z_t ~ softmax(trans[z_(t-1)]).

    Used like a torch distribution by generated code (sample, log_prob); `log_marginal` and
    `viterbi` sum or maximize over every path given per-step emission log-probabilities
    log p(x_t | z_t = k) of shape [batch, T, K]. Each loops over T only, vectorized over the batch."""

    def __init__(self, init, trans, length):
        self.log_init = torch.log_softmax(init, dim=-1)     # [K]
        self.log_trans = torch.log_softmax(trans, dim=-1)   # [K, K]: from row state to column state
        self.length = length

    def sample(self, shape=()):
        """Paths of shape [*shape, T], drawn one step at a time."""
        n = int(torch.Size(shape).numel())
        state = torch.distributions.Categorical(logits=self.log_init).sample((n,))
        path = [state]
        for _ in range(self.length - 1):
            state = torch.distributions.Categorical(logits=self.log_trans[state]).sample()
            path.append(state)
        return torch.stack(path, dim=-1).reshape(*shape, self.length)

    def log_prob(self, z):
        """log p(z) of paths z [..., T]."""
        steps = self.log_trans[z[..., :-1], z[..., 1:]].sum(-1)
        return self.log_init[z[..., 0]] + steps

    def log_marginal(self, log_emit):
        """log sum over every path z of p(z) prod_t p(x_t | z_t): the forward algorithm, [batch]."""
        alpha = self.log_init + log_emit[:, 0]                           # [batch, K]
        for t in range(1, log_emit.shape[1]):
            alpha = torch.logsumexp(alpha.unsqueeze(-1) + self.log_trans, dim=1) + log_emit[:, t]
        return torch.logsumexp(alpha, dim=-1)

    def viterbi(self, log_emit):
        """The most probable path given the emissions, [batch, T] (ties go to the lower state), and
        its log p(x, path), [batch]."""
        delta = self.log_init + log_emit[:, 0]                           # [batch, K]
        back = []
        for t in range(1, log_emit.shape[1]):
            best, arg = (delta.unsqueeze(-1) + self.log_trans).max(dim=1)
            back.append(arg)                                             # [batch, K]: best previous state
            delta = best + log_emit[:, t]
        log_joint, state = delta.max(dim=-1)
        path = [state]
        for arg in reversed(back):
            state = arg.gather(1, state.unsqueeze(1)).squeeze(1)
            path.append(state)
        return torch.stack(path[::-1], dim=1), log_joint


def every_state(k, length, device):
    """The K constant paths [K, T]: path k is in state k at every step."""
    return torch.arange(k, device=device).unsqueeze(1).expand(k, length)


def per_step_log_prob(dist, x):
    """log p(x_t | z_t = k), [batch, T, K], from the distribution of x given every_state's K paths:
    each step's own density (the dims after T summed), scored against every path at once."""
    base = dist.base_dist if isinstance(dist, torch.distributions.Independent) else dist
    scores = base.log_prob(x.unsqueeze(1))                               # [batch, K, T, ...]
    return scores.reshape(*scores.shape[:3], -1).sum(-1).transpose(1, 2)
