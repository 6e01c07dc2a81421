"""``irtcat bank export`` → ``irtcat bank import`` gives the same bank back: imported items (every
kind, a stimulus, media) and a bank's own keyed items (choice, numeric entry, partial credit);
and the package is plain QTI 3.0 to any other reader (without its extension file, every item
still imports, with the parameters from its parameters.csv, but a numeric entry scored in
bands, which QTI's processing here carries as right/wrong within its widest band)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from irtcat.cli.main import main
from irtcat.domain.bank import ItemBank
from irtcat.domain.generate import generate_bank, with_partial_credit

DATA = Path(__file__).parent.parent / "data" / "qti"


def _round_trip(bank_path: Path, tmp: Path) -> ItemBank:
    assert main(["bank", "export", str(bank_path), "--qti", str(tmp / "out.zip")]) == 0
    assert main(["bank", "import", str(tmp / "out.zip"), "--out", str(tmp / "back.json"), "--strict"]) == 0
    return ItemBank.load(tmp / "back.json")


def test_an_imported_bank_round_trips_with_its_media(tmp_path: Path) -> None:
    assert main(["bank", "import", str(DATA / "qti3"), "--parameters", str(DATA / "qti3-parameters.csv"),
                 "--out", str(tmp_path / "bank.json")]) == 0
    original = ItemBank.load(tmp_path / "bank.json")
    back = _round_trip(tmp_path / "bank.json", tmp_path)
    assert back.model_dump() == original.model_dump()
    for name in ("media/triangle.png", "media/shape.svg"):
        assert (tmp_path / "back.media" / name).read_bytes() == (tmp_path / "bank.media" / name).read_bytes()


def test_a_bank_of_keyed_items_round_trips(tmp_path: Path) -> None:
    bank = with_partial_credit(generate_bank(12, "3PL", seed=2, bank_id="keyed"), ["3PL", "GRM", "GPCM"], seed=2)
    calibrated = bank.model_copy(update={"items": [it.model_copy(update={"se_a": 0.1, "n_responses": 300,
                                                                         "attributes": {"dok": "2"}})
                                                   for it in bank.items]})
    calibrated.dump(tmp_path / "keyed.json")
    back = _round_trip(tmp_path / "keyed.json", tmp_path)
    assert back.model_dump() == calibrated.model_dump()


def test_the_package_is_plain_qti_without_its_extension(tmp_path: Path) -> None:
    bank = with_partial_credit(generate_bank(12, "3PL", seed=2, bank_id="keyed"), ["3PL", "GRM", "GPCM"], seed=2)
    bank.dump(tmp_path / "keyed.json")
    assert main(["bank", "export", str(tmp_path / "keyed.json"), "--qti", str(tmp_path / "out.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "out.zip") as z, zipfile.ZipFile(tmp_path / "plain.zip", "w") as plain:
        for name in z.namelist():
            if name != "irtcat-bank.json":
                plain.writestr(name, z.read(name))
        params = z.read("parameters.csv").decode()
    (tmp_path / "params.csv").write_text(params)
    assert main(["bank", "import", str(tmp_path / "plain.zip"), "--parameters", str(tmp_path / "params.csv"),
                 "--out", str(tmp_path / "plain.json"), "--strict"]) == 2
    banded = [it.item_id for it in bank.items if it.credit_bands is not None]
    plain_bank = ItemBank.load(tmp_path / "plain.json")
    assert banded and [it.item_id for it in plain_bank.items] == [it.item_id for it in bank.items
                                                                    if it.item_id not in banded]
    for old, new in zip([it for it in bank.items if it.item_id not in banded], plain_bank.items, strict=True):
        assert (new.item_id, new.status, new.a, new.b) == (old.item_id, "operational", old.a, old.b)
        categories = len(old.thresholds) + 1 if old.model else 2
        assert len(new.score_values or []) == categories and new.kind == old.kind
    assert json.loads((tmp_path / "plain.json").read_text())["model"] == "3PL"
