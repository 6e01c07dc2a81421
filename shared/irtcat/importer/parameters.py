"""Item parameters for imported items: ``--parameters FILE``, a CSV ``item_id,model,a,b,c`` (with
optional ``d`` and ``b1`` ... ``b5`` for partial-credit thresholds) or a QTI usage-data file
(2.x ``usageData``/``itemStatistic`` or 3.0 ``qti-usage-data``/``qti-item-statistic``): one
ordinary statistic per parameter and item, named ``a``, ``b``, ``c``, ``d``, ``b1`` ... ``b5``
(or with an ``irt_`` prefix), its ``stdError`` the parameter's SE, and optionally ``model``.

An item with parameters comes in ``operational`` (unless its source says otherwise); one
without comes in ``pretest`` at neutral starting values (a = 1, b = 0; a partial-credit item's
thresholds spread over -1..1), so that online calibration estimates it from live answers.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..domain.bank import Item
from .safety import Refused

DICHOTOMOUS = ("1PL", "2PL", "3PL", "4PL")
PARTIAL = ("GRM", "GPCM")
_GENERALITY = {m: k for k, m in enumerate(DICHOTOMOUS)}


def number(text: str, where: str) -> float:
    """A finite number from a cell (``Refused`` naming ``where`` otherwise)."""
    try:
        x = float(text)
    except ValueError:
        raise Refused(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(x):
        raise Refused(f"{where}: {text!r} is not a finite number")
    return x


def row_parameters(row: dict[str, str], where: str) -> dict[str, Any] | None:
    """The parameters a row gives (``model``, ``a``, ``b``, ``c``, ``d``, ``b1``..``b5``), or
    None when it gives none; ``Refused`` naming the column when one is wrong."""
    cells = {k: (row.get(k) or "").strip() for k in ("model", "a", "b", "c", "d", *(f"b{k}" for k in range(1, 6)))}
    if not any(cells[k] for k in cells if k != "model"):
        return None
    model = cells["model"].upper() or "3PL"
    if model not in DICHOTOMOUS + PARTIAL:
        raise Refused(f"{where} column model: {cells['model']!r} is not one of {', '.join(DICHOTOMOUS + PARTIAL)}")
    out: dict[str, Any] = {"model": model}
    if cells["a"]:
        out["a"] = number(cells["a"], f"{where} column a")
    if model in PARTIAL:
        thresholds = [number(cells[f"b{k}"], f"{where} column b{k}") for k in range(1, 6) if cells[f"b{k}"]]
        if not thresholds:
            raise Refused(f"{where} column b1: a {model} item needs thresholds b1, b2, ...")
        out["b"] = thresholds
        return out
    if not cells["b"]:
        raise Refused(f"{where} column b: a {model} item needs its difficulty b")
    out["b"] = number(cells["b"], f"{where} column b")
    for name in ("c", "d"):
        if cells[name]:
            out[name] = number(cells[name], f"{where} column {name}")
    return out


@dataclass
class Parameters:
    """The rows of a parameters file, by item id."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def unused(self, read: set[str]) -> list[str]:
        """The rows whose item no input holds."""
        return sorted(set(self.rows) - read)

    def bank_model(self, extra: list[str] | None = None) -> str:
        """The bank's right/wrong model: the most general one the parameters name (2PL when none)."""
        models = [r["model"] for r in self.rows.values() if r["model"] in DICHOTOMOUS] + (extra or [])
        return max(models, key=_GENERALITY.__getitem__) if models else "2PL"


def read_usage_data(path: Path) -> Parameters:
    """Parameters from a QTI usage-data file (module docstring); ``Refused`` naming the
    statistic that is wrong."""
    from .content import local_name
    from .qti import attr, child, children
    from .safety import parse_xml

    try:
        root = parse_xml(path.read_bytes(), path.name)
    except OSError as exc:
        raise Refused(f"cannot read parameters {path}: {exc.strerror}") from None
    if local_name(root.tag) != "usageData":
        raise Refused(f"{path.name}: not a QTI usage-data file (<{local_name(root.tag)}>)")
    cells: dict[str, dict[str, str]] = {}
    for stat in children(root, "itemStatistic"):
        name = (attr(stat, "name") or "").lower().removeprefix("irt_").removeprefix("irt-")
        target = child(stat, "targetObject")
        value_el = child(stat, "ordinaryStatistic")
        item_id = attr(target, "identifier") if target is not None else None
        value = child(value_el, "value") if value_el is not None else None
        if not item_id or value is None:
            raise Refused(f"{path.name}: statistic {name or '?'} without its target object or ordinary value")
        if name not in ("model", "a", "b", "c", "d", *(f"b{k}" for k in range(1, 6))):
            continue  # another statistic (p-value, point-biserial...): not a parameter
        cells.setdefault(item_id, {})[name] = (value.text or "").strip()
        if name not in ("model",) and attr(stat, "stdError"):
            cells[item_id][f"se_{name}"] = attr(stat, "stdError") or ""
    out = Parameters()
    for item_id, row in cells.items():
        if "model" not in row:  # thresholds: a partial-credit item; c: 3PL; else 2PL
            row["model"] = "GPCM" if "b1" in row else "3PL" if "c" in row else "2PL"
        where = f"{path.name} item {item_id}"
        params = row_parameters(row, where)
        if params is None:
            raise Refused(f"{path.name}: item {item_id} has no parameters")
        se = {k: number(row[f"se_{k}"], f"{where} stdError of {k}") for k in ("a", "b", "c") if f"se_{k}" in row}
        thresholds_se = [number(row[f"se_b{k}"], f"{where} stdError of b{k}") for k in range(1, 6)
                         if f"se_b{k}" in row]
        params.update({f"se_{k}": v for k, v in se.items()})
        if thresholds_se:
            params["se_b"] = thresholds_se
        out.rows[item_id] = params
    return out


def read_parameters(path: Path) -> Parameters:
    """Read a parameters CSV or usage-data XML file (``Refused`` naming the row and column, or
    the statistic, of the first bad value)."""
    if path.suffix.lower() == ".xml":
        return read_usage_data(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise Refused(f"cannot read parameters {path}: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "item_id" not in reader.fieldnames:
        raise Refused(f"{path.name}: a parameters file needs a header with item_id, model, a, b, c")
    out = Parameters()
    for n, row in enumerate(reader, start=2):
        where = f"{path.name}:{n}"
        item_id = (row.get("item_id") or "").strip()
        if not item_id:
            raise Refused(f"{where} column item_id: empty")
        params = row_parameters(row, where)
        if params is None:
            raise Refused(f"{where}: no parameters")
        if item_id in out.rows:
            raise Refused(f"{where} column item_id: {item_id} appears twice")
        out.rows[item_id] = params
    return out


def apply_parameters(fields: dict[str, Any], params: Parameters) -> Item:
    """The item of ``fields`` with its parameters: the file's row, else the source's own
    (``_parameters``), else pretest starting values (module docstring)."""
    fields = dict(fields)
    own = fields.pop("_parameters", None)
    given = params.rows.get(fields["item_id"], own)
    scores = fields.get("score_values")
    credits = fields.get("credits")
    categories = len(scores) - 1 if scores else (max(credits) if credits else 1)
    if given is None:
        fields.setdefault("status", "pretest")
        if categories > 1:
            fields.update(model="GPCM", a=1.0,
                          b=[round(-1 + 2 * k / (categories - 1), 6) for k in range(categories)])
        return Item.model_validate(fields)
    fields.setdefault("status", "operational")
    model = given["model"]
    if model in PARTIAL:
        if len(given["b"]) != categories:
            raise Refused(f"item {fields['item_id']}: {len(given['b'])} thresholds for {categories + 1} score "
                          "categories")
        fields.update(model=model, a=given.get("a", 1.0), b=given["b"])
        fields.update({k: given[k] for k in ("se_a", "se_b") if k in given})
    else:
        if categories > 1:
            raise Refused(f"item {fields['item_id']}: a {model} row for an item of {categories + 1} score "
                          "categories (give GRM or GPCM thresholds)")
        fields.update({k: given[k] for k in ("a", "b", "c", "d", "se_a", "se_b", "se_c") if k in given})
    return Item.model_validate(fields)
