"""``irtcat itemfit``, ``irtcat dif`` and ``irtcat link`` end to end on files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from irtcat.cli.main import main
from irtcat.domain.bank import ItemBank

from tests.unit.test_health_dif import planted
from tests.unit.test_health_itemfit import MIRT_A, MIRT_D, MIRT_S_X2, lsat7


def write_bank(path: Path, a: Any, b: Any, model: str = "2PL", prefix: str = "i") -> ItemBank:
    bank = ItemBank.model_validate({"bank_id": "b", "version": 1, "model": model, "scale": 1.0, "items": [
        {"item_id": f"{prefix}{k}", "a": float(x), "b": float(y)} for k, (x, y) in enumerate(zip(a, b, strict=True))]})
    bank.dump(path)
    return bank


def write_responses(path: Path, x: np.ndarray, prefix: str = "i") -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "item_id", "response"])
        for p, row in enumerate(x):
            for i, v in enumerate(row):
                if v >= 0:
                    w.writerow([f"s{p}", f"{prefix}{i}", int(v)])


def test_itemfit_reports_s_x2_with_df_and_flags(tmp_path: Path, capsys: Any) -> None:
    a, d = np.array(MIRT_A), np.array(MIRT_D)
    write_bank(tmp_path / "bank.json", a, -d / a)
    write_responses(tmp_path / "r.csv", lsat7())
    assert main(["itemfit", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv"),
                 "--mincell", "0", "--adjust", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["item_id"] for r in out["items"]] == [f"i{k}" for k in range(5)]
    assert np.allclose([r["S_X2"] for r in out["items"]], MIRT_S_X2, rtol=1e-3)
    assert [r["df"] for r in out["items"]] == [2] * 5
    assert [r["flagged"] for r in out["items"]] == [False, True, False, False, False]  # item 2: p = .0007
    assert out["note"] is None and all(0 < r["rmsd"] < 0.1 for r in out["items"])
    assert main(["itemfit", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv")]) == 0
    assert "1 item(s) flagged" in capsys.readouterr().out


def test_dif_reads_groups_and_names_the_reference(tmp_path: Path, capsys: Any) -> None:
    x, focal, a, b, _ = planted(n=800, k=10, seed=4)
    write_bank(tmp_path / "bank.json", a, b)
    write_responses(tmp_path / "r.csv", x)
    with (tmp_path / "g.csv").open("w") as fh:
        fh.write("student_id,language\n" + "".join(f"s{p},{'es' if f else 'en'}\n" for p, f in enumerate(focal)))
    assert main(["dif", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv"),
                 "--groups", str(tmp_path / "g.csv"), "--variable", "language", "--focal", "es", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference"] == "en" and out["focal_n"] == out["reference_n"] == 800
    assert out["matching"] == "purified summed score"
    assert all(r["flagged"] and r["mh_delta"] < -1.5 for r in out["items"][:3])
    assert main(["dif", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv"),
                 "--groups", str(tmp_path / "g.csv"), "--variable", "language", "--focal", "fr"]) == 2
    assert "no student has the focal value 'fr'" in capsys.readouterr().err


def test_link_recovers_known_constants_and_applies_them(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.8, 2.0, 12), rng.normal(0, 1, 12)
    big_a, big_b = 1.25, -0.4  # theta_old = A theta_new + B
    old = write_bank(tmp_path / "old.json", a, b)
    write_bank(tmp_path / "new.json", a * big_a, (b - big_b) / big_a)
    assert main(["link", "--from", str(tmp_path / "old.json"), "--to", str(tmp_path / "new.json"),
                 "--apply", str(tmp_path / "linked.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["A"] - big_a) < 1e-3 and abs(out["B"] - big_b) < 1e-3 and out["anchors"] == 12
    linked = ItemBank.load(tmp_path / "linked.json")
    assert np.allclose([it.a for it in linked.items], [it.a for it in old.items], atol=1e-3)
    assert np.allclose([it.b for it in linked.items], [it.b for it in old.items], atol=1e-3)
    write_bank(tmp_path / "few.json", a[:4], b[:4])
    assert main(["link", "--from", str(tmp_path / "old.json"), "--to", str(tmp_path / "few.json")]) == 2
    assert "linking needs at least 5" in capsys.readouterr().err


def test_drift_finds_items_whose_difficulty_moved(tmp_path: Path, capsys: Any) -> None:
    """2,000 examinees (a population shifted to N(0.2, 1.1)) on 30 items; items 0-2 became 0.5
    harder than the bank says. Re-estimated, linked back (the population shift is absorbed by
    the link), the three are flagged and no other."""
    rng = np.random.default_rng(6)
    k, n = 30, 2000
    a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
    now = b.copy()
    now[:3] += 0.5
    theta = rng.normal(0.2, 1.1, n)
    x = (rng.random((n, k)) < 1 / (1 + np.exp(-a * (theta[:, None] - now)))).astype(np.int64)
    write_bank(tmp_path / "bank.json", a, b)
    write_responses(tmp_path / "r.csv", x)
    assert main(["drift", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drifting"] == ["i0", "i1", "i2"]
    assert abs(out["A"] - 1.1) < 0.1 and abs(out["B"] - 0.2) < 0.1


def test_bad_input_is_refused_with_a_reason(tmp_path: Path, capsys: Any) -> None:
    a, d = np.array(MIRT_A), np.array(MIRT_D)
    write_bank(tmp_path / "bank.json", a, -d / a)
    write_responses(tmp_path / "r.csv", lsat7()[:50], prefix="x")  # items the bank does not have
    assert main(["itemfit", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv")]) == 2
    assert "not in the bank: x0" in capsys.readouterr().err
    write_responses(tmp_path / "ok.csv", lsat7()[:50])
    (tmp_path / "g.csv").write_text("student,lang\ns0,es\n")
    assert main(["dif", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "ok.csv"),
                 "--groups", str(tmp_path / "g.csv"), "--variable", "lang", "--focal", "es"]) == 2
    assert "needs the columns student_id and lang" in capsys.readouterr().err
    assert main(["link", "--from", str(tmp_path / "missing.json"), "--to", str(tmp_path / "bank.json")]) == 2
    assert "irtcat: error:" in capsys.readouterr().err
