"""The constructs of the bugs issue 10 started from (KNOWN_BUGS), and whether they are drawn."""

from __future__ import annotations

import os

# Constructs of the bugs that issue 10 started from. Each must now train or be refused with a
# diagnostic, so they are drawn by default (a few percent of the cases, tagged with these names);
# GENDSL_TRAINS_KNOWN=0 leaves them out, to hunt for other bugs while one of them regresses.
KNOWN_BUGS = {
    "known:index_batch": "`h[0]` on a per-sample value indexes the batch",
    "known:reduce_in_net": "`sum`/`mean` inside a network reduce over the batch",
    "known:scalar_times_vector": "a per-sample scalar times a vector does not broadcast per sample",
    "known:shared_attend": "a shared tensor as keys/values of attend/hard_attend, or in concat",
    "known:langevin_two_inputs": "Langevin on an energy with two inputs",
    "known:parameter_free_step": "a step over a network without parameters",
    "known:method_options": "keyword options of f.inverse / q.reverse / q.loss are ignored",
    "known:scalar_categorical": "`Categorical(logits = 0)`",
    "known:made_parallel": "MADE masks of parallel masked paths",
}


def known_enabled() -> bool:
    return os.environ.get("GENDSL_TRAINS_KNOWN", "1") != "0"
