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


def test_parameters_read_from_qti_usage_data(tmp_path: Path) -> None:
    """The export's usagedata.xml (QTI 3) and a QTI 2.1 usageData file set parameters and SEs."""
    bank = generate_bank(6, "3PL", seed=3, bank_id="ud")
    bank = bank.model_copy(update={"items": [it.model_copy(update={"se_a": 0.11, "se_b": 0.07})
                                             for it in bank.items]})
    bank.dump(tmp_path / "ud.json")
    assert main(["bank", "export", str(tmp_path / "ud.json"), "--qti", str(tmp_path / "ud.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "ud.zip") as z:
        (tmp_path / "usagedata.xml").write_bytes(z.read("usagedata.xml"))
        with zipfile.ZipFile(tmp_path / "plain.zip", "w") as plain:
            for name in z.namelist():
                if name != "irtcat-bank.json":
                    plain.writestr(name, z.read(name))
    assert main(["bank", "import", str(tmp_path / "plain.zip"), "--parameters", str(tmp_path / "usagedata.xml"),
                 "--out", str(tmp_path / "back.json"), "--strict"]) == 0
    back = ItemBank.load(tmp_path / "back.json")
    for old, new in zip(bank.items, back.items, strict=True):
        assert (new.status, new.a, new.b, new.c, new.se_a, new.se_b) == ("operational", old.a, old.b, old.c, 0.11, 0.07)
    assert back.model == "3PL"
    qti21 = tmp_path / "stats.xml"
    qti21.write_text('<usageData xmlns="http://www.imsglobal.org/xsd/imsqti_usagedata_v2p1" glossary="g">'
                     '<itemStatistic name="irt_a" glossary="g" stdError="0.2"><targetObject identifier="i00000"/>'
                     "<ordinaryStatistic><value>1.5</value></ordinaryStatistic></itemStatistic>"
                     '<itemStatistic name="irt_b" glossary="g"><targetObject identifier="i00000"/>'
                     "<ordinaryStatistic><value>-0.25</value></ordinaryStatistic></itemStatistic>"
                     '<itemStatistic name="pvalue" glossary="g"><targetObject identifier="i00000"/>'
                     "<ordinaryStatistic><value>0.61</value></ordinaryStatistic></itemStatistic></usageData>")
    assert main(["bank", "import", str(tmp_path / "plain.zip"), "--parameters", str(qti21),
                 "--out", str(tmp_path / "one.json")]) == 0
    one = ItemBank.load(tmp_path / "one.json")
    first = one.item("i00000")
    assert (first.status, first.a, first.b, first.se_a) == ("operational", 1.5, -0.25, 0.2)
    assert one.model == "2PL" and {it.status for it in one.items[1:]} == {"pretest"}
