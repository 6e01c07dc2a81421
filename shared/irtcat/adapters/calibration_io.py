"""Reading responses for calibration and writing the calibrated bank."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..domain.calibration_bank import calibrated_bank
from ..irt.calibration import ResponseData

__all__ = ["calibrated_bank", "read_long_responses", "to_response_data"]


def read_long_responses(path: str | Path, categories: bool = False) -> tuple[list[str], list[str], np.ndarray]:
    """``student_id,item_id,response`` rows from CSV or Parquet (by extension); ``response`` is
    0/1, or with ``categories`` any category 0, 1, 2, ... (partial credit).

    ValueError with the line numbers on an empty file, a response that is not one of those, or
    duplicate student-item rows.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"cannot read responses {path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import duckdb

        rows = duckdb.execute(f"SELECT CAST(student_id AS VARCHAR), CAST(item_id AS VARCHAR), "
                          f"CAST(response AS VARCHAR) FROM read_parquet('{path.as_posix()}')").fetchall()
        students = [r[0] for r in rows]
        items = [r[1] for r in rows]
        raw = [r[2] for r in rows]
        first_line = 1
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file")
            if [h.strip() for h in header[:3]] != ["student_id", "item_id", "response"]:
                raise ValueError(f"{path}: header must be student_id,item_id,response")
            students, items, raw = [], [], []
            for no, row in enumerate(reader, 2):
                if len(row) < 3:
                    raise ValueError(f"{path}:{no}: expected student_id,item_id,response")
                students.append(row[0])
                items.append(row[1])
                raw.append(row[2].strip())
        first_line = 2
    if not students:
        raise ValueError(f"{path}: no responses")
    bad = [i for i, v in enumerate(raw) if not (v.isdigit() if categories else v in ("0", "1"))]
    if bad:
        lines = ", ".join(str(i + first_line) for i in bad[:5])
        what = "categories 0, 1, 2, ..." if categories else "0 or 1"
        raise ValueError(f"{path}: responses must be {what} (line {lines}{', ...' if len(bad) > 5 else ''})")
    seen: dict[tuple[str, str], int] = {}
    dups = []
    for i, key in enumerate(zip(students, items, strict=True)):
        if key in seen:
            dups.append((seen[key] + first_line, i + first_line))
        else:
            seen[key] = i
    if dups:
        shown = "; ".join(f"lines {a} and {b}" for a, b in dups[:5])
        raise ValueError(f"{path}: duplicate student-item rows ({shown}{'; ...' if len(dups) > 5 else ''})")
    return students, items, np.array([int(v) for v in raw], dtype=np.int64)


def to_response_data(students: list[str], items: list[str], response: np.ndarray,
                     item_ids: list[str]) -> ResponseData:
    """Index the rows against ``item_ids`` (ValueError naming unknown items)."""
    index = {item_id: j for j, item_id in enumerate(item_ids)}
    unknown = sorted({i for i in items if i not in index})
    if unknown:
        shown = ", ".join(unknown[:5])
        raise ValueError(f"{len(unknown)} item id(s) not in the bank: {shown}{', ...' if len(unknown) > 5 else ''}")
    persons: dict[str, int] = {}
    person = np.fromiter((persons.setdefault(s, len(persons)) for s in students), dtype=np.int64, count=len(students))
    item = np.fromiter((index[i] for i in items), dtype=np.int64, count=len(items))
    return ResponseData.from_long(person, item, response, n_persons=len(persons), n_items=len(item_ids))
