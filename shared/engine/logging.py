"""Metric logging to JSONL, CSV and TensorBoard (rank 0 only)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ..guard import open_atomic, unshare_file, write_atomic


class MetricLogger:
    """Appends one record per call to ``metrics.jsonl`` and ``metrics.csv``; mirrors scalars to TensorBoard."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        """``resume_step``: keep only records up to that step (0 = start fresh logs; None = append all),
        so a run resumed from its step-N checkpoint does not log the steps after N twice."""
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self._csv_fields: list[str] | None = None
        self._tb = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / "metrics.jsonl"
        self.csv_path = self.out_dir / "metrics.csv"
        for path in (self.jsonl_path, self.csv_path):
            unshare_file(path)  # appends below must never reach another file through a link
        if resume_step is not None:
            self._drop_after(resume_step)
        if self.csv_path.exists() and self.csv_path.stat().st_size > 0:
            with self.csv_path.open() as handle:
                self._csv_fields = next(csv.reader(handle), None)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = None if resume_step is None else resume_step + 1
                self._tb = SummaryWriter(log_dir=str(self.out_dir / "tb"), purge_step=purge)
            except ImportError:
                self._tb = None

    def _drop_after(self, step: int) -> None:
        """Rewrite metrics.jsonl / metrics.csv without the records of steps after ``step``."""
        if self.jsonl_path.exists():
            kept = []
            for line in self.jsonl_path.read_text().splitlines():
                try:
                    if int(json.loads(line)["step"]) <= step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill mid-write
            write_atomic(self.jsonl_path, "".join(line + "\n" for line in kept))
        if self.csv_path.exists():
            with self.csv_path.open(newline="") as handle:
                rows = list(csv.reader(handle))
            if step <= 0 or not rows:
                self.csv_path.unlink()
                return
            header, kept_rows = rows[0], []
            for row in rows[1:]:
                try:
                    if int(row[0]) <= step and len(row) == len(header):
                        kept_rows.append(row)
                except (ValueError, IndexError):
                    continue
            with open_atomic(self.csv_path, "w", newline="") as handle:
                csv.writer(handle).writerows([header] + kept_rows)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        with self.jsonl_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._csv_fields is None:
            self._csv_fields = list(record)
            with open_atomic(self.csv_path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._csv_fields)
        with self.csv_path.open("a", newline="") as handle:
            csv.writer(handle).writerow([record.get(k, "") for k in self._csv_fields])
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        return value.item()
    return value
