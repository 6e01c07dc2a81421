"""Spreadsheet import (CSV and XLSX): one item a row, with parameters, thresholds, attributes, a
passage and an image; a wrong row is refused with its row number and column, the rest come in."""

from __future__ import annotations

import csv
from pathlib import Path

from irtcat.domain.scoring import score_choice, shown_options
from irtcat.importer.build import import_bank

HEADER = ["item_id", "stem", "option_a", "option_b", "option_c", "option_d", "option_e", "option_f", "key",
          "answer_value", "tolerance", "model", "a", "b", "c", "content_area", "status", "image", "alt", "b1", "b2",
          "credits", "expected_seconds", "passage", "attr_dok"]
GOOD = [
    {"item_id": "s1", "stem": "What is <b>2 + 2</b>?", "option_a": "3", "option_b": "4", "option_c": "5", "key": "B",
     "model": "3PL", "a": "1.1", "b": "-0.4", "c": "0.2", "content_area": "number", "attr_dok": "1",
     "expected_seconds": "45"},
    {"item_id": "s2", "stem": "Half of 9?", "answer_value": "4.5", "tolerance": "0.05", "content_area": "number"},
    {"item_id": "s3", "stem": "Which shape is shown?", "option_a": "a square", "option_b": "a triangle", "key": "b",
     "image": "pics/tri.png", "alt": "a red triangle", "passage": "shapes", "attr_dok": "2"},
    {"item_id": "s4", "stem": "How many corners has a cube?", "option_a": "8", "option_b": "6", "option_c": "4",
     "credits": "2;1;0", "model": "GPCM", "a": "0.8", "b1": "-0.5", "b2": "0.7"},
]
BAD = [
    ({"item_id": "x1", "stem": "Pick", "option_a": "1", "option_b": "2", "key": "C"},
     "column key: 'C' is not the letter of an option"),
    ({"item_id": "x2", "stem": "", "option_a": "1", "key": "A"}, "column stem: empty"),
    ({"item_id": "x3", "stem": "Pick", "option_a": "1", "option_b": "2", "key": "A", "model": "3PL", "a": "x",
      "b": "0"}, "column a: 'x' is not a number"),
    ({"item_id": "x4", "stem": "Pick", "option_a": "1", "key": "A", "image": "pics/tri.png"},
     "column alt: an image needs its alt text"),
    ({"item_id": "x5", "stem": "Pick", "option_a": "1", "key": "A", "image": "pics/none.png", "alt": "n"},
     "column image: missing media file pics/none.png"),
    ({"item_id": "x6", "stem": "Pick", "option_a": "1", "key": "A", "status": "operational"},
     "column a: an operational item needs its parameters"),
    ({"item_id": "x7", "stem": "Pick", "option_a": "1", "key": "A", "status": "live"},
     "column status: 'live' is not one of operational, pretest, retired"),
    ({"item_id": "x8", "stem": "Pick", "option_a": "1", "option_c": "3", "key": "A"},
     "column option_b: empty between other options"),
    ({"item_id": "x9", "stem": "Pick", "option_a": "1", "key": "A", "image": "../../etc/passwd", "alt": "p"},
     "a path that leaves the package"),
    ({"item_id": "s1", "stem": "Again", "option_a": "1", "key": "A"}, "duplicate item id s1"),
]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, HEADER)
        w.writeheader()
        w.writerows(rows)


def _check(bank_path: Path, report: object, sheet: str) -> None:
    from irtcat.domain.bank import ItemBank

    bank = ItemBank.load(bank_path)
    assert [it.item_id for it in bank.items] == ["s1", "s2", "s3", "s4"]
    s1, s2, s3, s4 = bank.items
    assert (s1.status, s1.a, s1.b, s1.c, s1.key, s1.stem) == ("operational", 1.1, -0.4, 0.2, 1, "What is <b>2 + 2</b>?")
    assert s1.attributes == {"dok": "1"} and s1.expected_seconds == 45 and s1.content_area == "number"
    assert (s2.status, s2.kind, s2.answer_value, s2.tolerance) == ("pretest", "numeric", 4.5, 0.05)
    assert score_choice(s2, 4.54, "k", 1).score == 1 and score_choice(s2, 4.6, "k", 1).score == 0
    assert s3.attributes == {"dok": "2", "passage": "shapes"} and s3.key == 1
    assert '<img src="media/pics/tri.png" alt="a red triangle">' in (s3.stem or "")
    assert (bank_path.parent / "bank.media" / "pics" / "tri.png").exists()
    assert (s4.model, s4.thresholds, s4.credits, s4.status) == ("GPCM", [-0.5, 0.7], [2, 1, 0], "operational")
    by_text = {text: label for label, text in shown_options("k", 1, s4)}
    assert score_choice(s4, by_text["8"], "k", 1).score == 2
    refused = {(r["source"], r["reason"]) for r in report.refused}  # type: ignore[attr-defined]
    for k, (_, reason) in enumerate(BAD):
        row = f"{sheet}:{len(GOOD) + k + 2}"
        assert any(src == row and reason in why for src, why in refused), (row, reason, refused)


def test_a_csv_sheet_imports_its_good_rows_and_names_each_bad_row(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "tri.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _write_csv(tmp_path / "items.csv", GOOD + [row for row, _ in BAD])
    bank, report = import_bank([tmp_path / "items.csv"], tmp_path / "bank.json")
    assert bank is not None and len(report.refused) == len(BAD)
    _check(tmp_path / "bank.json", report, "items.csv")


def test_an_xlsx_sheet_reads_the_same(tmp_path: Path) -> None:
    from openpyxl import Workbook

    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "tri.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in GOOD + [r for r, _ in BAD]:
        # a spreadsheet stores numbers as numbers: the reader turns them back into the text typed
        sheet.append([_cell(row.get(h, "")) for h in HEADER])
    book.save(tmp_path / "items.xlsx")
    bank, report = import_bank([tmp_path / "items.xlsx"], tmp_path / "bank.json")
    assert bank is not None
    _check(tmp_path / "bank.json", report, "items.xlsx")


def _cell(text: str) -> str | float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text
