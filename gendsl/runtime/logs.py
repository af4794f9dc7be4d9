"""Metrics to CSV and TensorBoard (and MLflow, when asked), and a live progress bar with the losses."""

from __future__ import annotations

import csv
import sys
from pathlib import Path


class MetricLog:
    """Appends rows to metrics.csv and mirrors them to TensorBoard, and to `mirror` (an MLflow run)
    when there is one. The columns are fixed when the log starts (those of the file a resumed run
    continues); a row leaves out what it lacks (the valid losses of a round that did not validate)."""

    def __init__(self, folder: Path, fields: list[str], tensorboard: bool = True, resume: bool = False,
                 mirror=None):
        self.path = folder / "metrics.csv"
        self.fields = fields
        self.rows: list[dict] = []
        if resume and self.path.exists():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                self.rows = list(reader)
                self.fields = list(reader.fieldnames or fields)
        elif self.path.exists():
            self.path.unlink()
        self.mirror = mirror
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
            writer = csv.DictWriter(handle, fieldnames=self.fields, restval="", extrasaction="ignore")
            if first:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("round", "epoch") and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["round"]))
        if self.mirror is not None:
            self.mirror.log(row)

    def image(self, tag: str, png: Path, round_: int) -> None:
        """A picture the run wrote (a sample grid, a scatter plot) under `samples/TAG` in TensorBoard,
        and as an artifact of the MLflow run."""
        if self.mirror is not None:
            self.mirror.image(png)
        if self.writer is not None:
            import numpy as np
            from PIL import Image

            self.writer.add_image(f"samples/{tag}", np.asarray(Image.open(png).convert("RGB")), round_,
                                  dataformats="HWC")

    def histograms(self, named_parameters, round_: int) -> None:
        """The distribution of every parameter tensor's values, under `weights/NAME`."""
        if self.writer is not None:
            for name, value in named_parameters:
                self.writer.add_histogram(f"weights/{name}", value.detach().float().cpu(), round_)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def truncate(self, last_round: int) -> None:
        """On resume, forget rows logged after the checkpoint (they will be logged again)."""
        self.rows = [r for r in self.rows if int(r["round"]) <= last_round]
        if self.rows:
            with open(self.path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.fields, restval="", extrasaction="ignore")
                writer.writeheader()
                writer.writerows(self.rows)
        elif self.path.exists():
            self.path.unlink()


def progress(total: int, initial: int, quiet: bool):
    """A tqdm bar on stderr (disabled with --quiet or when not at a terminal and not forced)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="round", dynamic_ncols=True, disable=quiet,
                file=sys.stderr, mininterval=0.5, smoothing=0.05)
