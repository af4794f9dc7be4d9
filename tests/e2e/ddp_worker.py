"""Run by test_distributed under torchrun: trains a few rounds and prints a checksum per rank."""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from gendsl.train.loop import Options, Trainer
from gendsl.train.run import create

rank = int(os.environ["RANK"])
run, _ = create(Path(sys.argv[1]), "specs/gan_ring.gen", ["width=16"], None, write=rank == 0)
trainer = Trainer(run, Options(quiet=True, steps=20))
for _ in range(20):
    trainer.one_round()
checksum = sum(float(p.double().sum()) for p in trainer.model.parameters())
print(f"rank {rank} checksum {checksum:.12f}", flush=True)
dist.barrier()
dist.destroy_process_group()
