"""Hypothesis strategies that draw well-typed .gen specs (the "checked means trains" property).

Two sources of cases:

- `generated_cases()` builds a spec by construction. A data plan (synthetic sources with a small
  n, digits, npy/npz files and image folders that the test writes, one or two `data` lines), a
  model family (autoencoder, VAE, observe with a latent, mixture, GAN, translation, flow, MADE,
  PixelCNN, diffusion, EBM), networks whose pipelines are drawn layer by layer from LAYERS with
  the per-sample type tracked by each entry's own rule, expressions in bodies and losses, a train
  block (one minimize or named steps; optimizers, schedules and settings), samples and an
  evaluate block. Each registry entry's options come from its signature
  (gendsl.library.signature.parameters) and are validated by the entry's rule before use, so the
  drawn spec is well typed by construction.
- `mutated_cases()` edits a reference spec (specs/*.gen, tests/specs/*.gen): `--set` params,
  layers swapped for others from the registry, widths, optimizers, schedules, settings, metrics,
  distributions, statements dropped or duplicated. Big data sources become tiny files of the same
  shape, so that every case trains in a fraction of a second.

A case (`Case`) is plain data: the spec text with DATA_DIR where the test's folder goes, the
`--set` overrides, the files to write, and tags naming the constructs it uses (coverage counts).
The constructs of the bugs issue 10 started from (KNOWN_BUGS) are drawn too, unless
GENDSL_TRAINS_KNOWN=0.

The drawing is split by purpose across this package: picker (random choices), case (cases and
their data files), gen_text (values written in the language), entry_options (registry entries with
drawn options), builder (the spec under construction), pipelines (layers and pipelines),
expressions (network bodies), distributions, data_plans, families_latent / families_adversarial /
families_density (model families), train_evaluate (train and evaluate blocks), mutations (mutated
reference specs), known_bugs, and generator (`generate` and the hypothesis strategies). This
module is their public entry point.
"""

from tests.strategies.case import DATA_DIR, Array, Case, DataFile
from tests.strategies.generator import SEEDS, cases, generate, generated_cases, mutated_cases, seeded
from tests.strategies.known_bugs import KNOWN_BUGS, known_enabled
from tests.strategies.mutations import mutate
from tests.strategies.picker import Picker

__all__ = ["DATA_DIR", "KNOWN_BUGS", "SEEDS", "Array", "Case", "DataFile", "Picker", "cases", "generate",
           "generated_cases", "known_enabled", "mutate", "mutated_cases", "seeded"]
