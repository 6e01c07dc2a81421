"""Items from a spreadsheet (CSV, or XLSX read by openpyxl), one item a row.

Header: ``item_id, stem, option_a`` ... ``option_f, key, answer_value, tolerance, model, a, b,
c, content_area, status, image, alt``, and optionally ``d``, ``b1`` ... ``b5`` (GRM/GPCM
thresholds, with ``credits``: the category each option earns, e.g. ``0;1;2;0``),
``expected_seconds``, ``passage`` and ``attr_<name>`` (blueprint attributes). ``key`` is a
letter; ``stem`` and the options may hold the same safe HTML subset as QTI content; ``image``
is a path relative to the sheet, shown under the stem with its ``alt`` text (required). A wrong
row is refused with its row number and column; the others come in.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from .content import sanitise
from .drafts import Collected, Draft, ImportReport
from .media import MediaCollector
from .parameters import number, row_parameters
from .safety import MAX_XML_BYTES, Package, Refused

OPTION_COLUMNS = [f"option_{c}" for c in "abcdef"]
STATUSES = ("operational", "pretest", "retired")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The sheet's rows as header -> cell text (the first sheet of a workbook)."""
    if path.suffix.lower() == ".csv":
        text = path.read_text(encoding="utf-8-sig")
        rows = csv.DictReader(io.StringIO(text))
        return [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in rows]
    if path.stat().st_size > MAX_XML_BYTES:
        raise Refused(f"{path.name}: a workbook larger than {MAX_XML_BYTES // 2**20} MiB")
    Package(path).read("xl/workbook.xml")  # the size limits on what it inflates, before openpyxl reads it
    from openpyxl import load_workbook  # uses defusedxml when installed (it is: the same extra)

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise Refused(f"{path.name}: not a readable workbook ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h or "").strip().lower() for h in next(rows, ())]
    out = []
    for values in rows:
        cells = ["" if v is None else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                 for v in values]
        out.append(dict(zip(header, cells, strict=False)))
    book.close()
    return out


def _item_fields(row: dict[str, str], where: str, sheet: Path, media: dict[str, Any], prefix: str
                 ) -> dict[str, Any]:
    cell = {k: (v or "").strip() for k, v in row.items()}
    item_id = cell.get("item_id", "")
    if not item_id:
        raise Refused(f"{where} column item_id: empty")
    fields: dict[str, Any] = {"item_id": item_id, "source": where, "content_area": cell.get("content_area", "")}
    stem = sanitise(cell.get("stem", ""))
    if not stem:
        raise Refused(f"{where} column stem: empty")
    if cell.get("image"):
        alt = cell.get("alt", "")
        if not alt:
            raise Refused(f"{where} column alt: an image needs its alt text (a screen reader reads it)")
        found = MediaCollector(Package(sheet.parent), sheet.name, prefix)
        try:
            target = found(cell["image"].replace("\\", "/"))
        except Refused as exc:
            raise Refused(f"{where} column image: {exc}") from None
        media.update(found.found)
        stem += f'<p><img src="{html.escape(target)}" alt="{html.escape(alt)}"></p>'
    fields["stem"] = stem
    options = [cell.get(c, "") for c in OPTION_COLUMNS]
    while options and not options[-1]:
        options.pop()
    if "" in options:
        raise Refused(f"{where} column {OPTION_COLUMNS[options.index('')]}: empty between other options")
    if options:
        fields["options"] = [sanitise(o) for o in options]
        if cell.get("credits"):
            credits = [int(number(x, f"{where} column credits")) for x in cell["credits"].split(";")]
            if len(credits) != len(options):
                raise Refused(f"{where} column credits: one category per option ({len(options)})")
            fields["credits"] = credits
        else:
            key = cell.get("key", "").upper()
            if len(key) != 1 or key not in "ABCDEF"[: len(options)]:
                raise Refused(f"{where} column key: {cell.get('key', '')!r} is not the letter of an option")
            fields["key"] = "ABCDEF".index(key)
    elif cell.get("answer_value"):
        fields["answer_value"] = number(cell["answer_value"], f"{where} column answer_value")
        if cell.get("tolerance"):
            fields["tolerance"] = number(cell["tolerance"], f"{where} column tolerance")
    else:
        raise Refused(f"{where} column option_a: an item needs options and a key, or an answer_value")
    if cell.get("status"):
        if cell["status"] not in STATUSES:
            raise Refused(f"{where} column status: {cell['status']!r} is not one of {', '.join(STATUSES)}")
        fields["status"] = cell["status"]
    params = row_parameters(cell, where)
    if params is not None:
        fields["_parameters"] = params
    elif fields.get("status") == "operational":
        raise Refused(f"{where} column a: an operational item needs its parameters (or leave status empty: pretest)")
    if cell.get("expected_seconds"):
        fields["expected_seconds"] = number(cell["expected_seconds"], f"{where} column expected_seconds")
    attributes = {k.removeprefix("attr_"): v for k, v in cell.items() if k.startswith("attr_") and v}
    if cell.get("passage"):
        attributes["passage"] = cell["passage"]
    fields["attributes"] = attributes
    return fields


def collect_sheet(path: Path, prefix: str, out: Collected, report: ImportReport) -> None:
    """Every row of a sheet as an item draft, or a refusal naming its row and column."""
    try:
        rows = read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Refused(f"{path.name}: cannot read the sheet ({exc})") from None
    for n, row in enumerate(rows, start=2):
        where = f"{path.name}:{n}"
        if not any((v or "").strip() for v in row.values()):
            continue
        media: dict[str, Any] = {}
        try:
            fields = _item_fields(row, where, path, media, prefix)
        except Refused as exc:
            report.refuse((row.get("item_id") or "").strip() or None, where, str(exc))
            continue
        out.drafts.append(Draft(fields, where, media))
