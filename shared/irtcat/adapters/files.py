"""The command line's files: policies, thetas and long-format response CSVs (written here; read
for calibration by :mod:`.calibration_io`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..domain.policy import TestPolicy


def load_policy(path: str | Path | None) -> TestPolicy:
    """A TestPolicy from JSON, or the defaults when no path is given."""
    if path is None:
        return TestPolicy()
    try:
        return TestPolicy.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read policy {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValueError(f"invalid policy {path}: {str(exc).splitlines()[-1].strip()}") from exc


def load_thetas(path: str | Path) -> np.ndarray:
    """True abilities, one number per line (blank lines and # comments ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read thetas {path}: {exc.strerror}") from exc
    values = []
    for no, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}:{no}: not a number: {text!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"{path}:{no}: not a finite number")
        values.append(value)
    if not values:
        raise ValueError(f"{path}: no abilities in the file")
    return np.array(values)


def write_responses_csv(path: str | Path, rows: list[tuple[str, str, int]]) -> None:
    """Long format with header ``student_id,item_id,response``."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", "item_id", "response"])
        writer.writerows(rows)
