"""The command line's files: policies, thetas and long-format response CSVs (written here; read
for calibration by :mod:`.calibration_io`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..domain.base import first_error
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
        raise ValueError(f"invalid policy {path}: {first_error(exc)}") from exc


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


class DirObjects:
    """A folder as an :class:`~irtcat.domain.ports.ObjectStore` (keys are relative paths), e.g.
    an exported history (``history/dt=YYYY-MM-DD/...``); ``get`` raises KeyError when missing."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def list(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))
