"""Metrics to CSV and TensorBoard, and a live progress bar with the losses."""

from __future__ import annotations

import csv
import sys
from pathlib import Path


class MetricLog:
    """Appends rows to metrics.csv (header fixed by the first row) and mirrors them to TensorBoard."""

    def __init__(self, folder: Path, tensorboard: bool = True, resume: bool = False):
        self.path = folder / "metrics.csv"
        self.rows: list[dict] = []
        if resume and self.path.exists():
            with open(self.path, newline="") as handle:
                self.rows = list(csv.DictReader(handle))
        elif self.path.exists():
            self.path.unlink()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:  # tensorboard is optional at run time; the CSV is always written
                self.writer = None

    def log(self, row: dict) -> None:
        first = not self.path.exists()
        self.rows.append(row)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if first:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("round", "epoch") and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["round"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def truncate(self, last_round: int) -> None:
        """On resume, forget rows logged after the checkpoint (they will be logged again)."""
        self.rows = [r for r in self.rows if int(r["round"]) <= last_round]
        if self.rows:
            with open(self.path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
                writer.writeheader()
                writer.writerows(self.rows)
        elif self.path.exists():
            self.path.unlink()


def progress(total: int, initial: int, quiet: bool):
    """A tqdm bar on stderr (disabled with --quiet or when not at a terminal and not forced)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="round", dynamic_ncols=True, disable=quiet,
                file=sys.stderr, mininterval=0.5, smoothing=0.05)
