"""Run by test_distributed under torchrun: trains a few rounds and writes a checksum per rank.

Each rank writes its own file: ranks share stdout, where their lines can interleave."""

import os
import sys
from pathlib import Path

import torch.distributed as dist

from gendsl.runtime.loop import Options, Trainer
from gendsl.runtime.run import create

rank = int(os.environ["RANK"])
run, _ = create(Path(sys.argv[1]), "specs/gan_ring.gen", ["width=16"], None, write=rank == 0)
trainer = Trainer(run, Options(quiet=True, steps=20))
for _ in range(20):
    trainer.one_round()
checksum = sum(float(p.double().sum()) for p in trainer.model.parameters())
Path(sys.argv[2], f"checksum{rank}").write_text(f"{checksum:.12f}")
dist.barrier()
dist.destroy_process_group()
