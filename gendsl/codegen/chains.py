"""The methods of a hidden Markov model: data observed step by step given a latent chain
`z: cat[K, T] ~ Markov(...)` (graph/passes/densities.py checked the observation is per step).

Both methods score the data against the K constant paths at once (every_state), so the
observation's networks and tensors run once per batch; the chain's helper (helpers/hmm.py) then
sums (forward algorithm) or maximizes (Viterbi) over the K^T paths in O(T K^2)."""

from __future__ import annotations

from gendsl.codegen.names import identifier


def chain_methods(info, key: str, node) -> list[tuple[str, str, list[str]]]:
    """(signature, doc, body) of `log_p_X(x)`, exact, and `viterbi_Z(x)`, the most probable path
    and its log p(x, path) (the `viterbi` metric's)."""
    var = node.term.vars[0]
    chain = node.term.given[0]
    x, z = identifier(var), identifier(chain)
    t = info.node(chain).type
    factor = info.call(key, [identifier(g) for g in info.inputs[key]])
    emissions = [f"{z} = every_state({t.classes}, {t.shape[0]}, {x}.device)  # [K, T]: path k stays in state k",
                 f"log_emit = per_step_log_prob({factor}, {x})  # log p({var}_t | {chain}_t = k): [batch, T, K]"]
    return [
        (f"log_p_{x}(self, {x})", f"log p({var}) = log sum over every path of {chain} of p({chain}) "
         f"p({var} | {chain}): exact, by the forward algorithm",
         [*emissions, f"return self.prior_{z}().log_marginal(log_emit)"]),
        (f"viterbi_{z}(self, {x})", f"the most probable path of {chain} given {var}, argmax p({chain} | {var}), "
         f"and its log p({var}, {chain}): the Viterbi algorithm",
         [*emissions, f"return self.prior_{z}().viterbi(log_emit)"]),
    ]
