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


def test_drift_of_partial_credit_items_in_a_mixed_bank(tmp_path: Path, capsys: Any) -> None:
    """2,000 examinees on 20 2PL and 10 GPCM items (four categories); item i0 and the GPCM items
    g0, g1 moved by 0.5 (a partial-credit item: all its thresholds). One calibration of both
    kinds, linked back: those three are flagged, and at most one other (the drift target: at
    most one false flag per replication on average)."""
    from irtcat.irt.polytomous import PolytomousItems, category_probabilities

    rng = np.random.default_rng(14)
    n, k_rw, k_pc = 2000, 20, 10
    a, b = rng.uniform(0.8, 2.0, k_rw), rng.normal(0, 1, k_rw)
    ga, gb = rng.uniform(0.9, 1.6, k_pc), np.sort(rng.normal(0, 0.8, (k_pc, 3)), axis=1)
    now_b, now_gb = b.copy(), gb.copy()
    now_b[0] += 0.5
    now_gb[:2] += 0.5
    theta = rng.normal(0, 1, n)
    x_rw = (rng.random((n, k_rw)) < 1 / (1 + np.exp(-a * (theta[:, None] - now_b)))).astype(int)
    p = category_probabilities(theta, PolytomousItems.build(["GPCM"] * k_pc, list(ga), now_gb.tolist(), scale=1.0))
    x_pc = (rng.random((n, k_pc, 1)) > np.cumsum(p, axis=2)).sum(axis=2)
    items = [{"item_id": f"i{j}", "a": float(a[j]), "b": float(b[j])} for j in range(k_rw)]
    items += [{"item_id": f"g{j}", "model": "GPCM", "a": float(ga[j]), "b": gb[j].tolist()} for j in range(k_pc)]
    ItemBank.model_validate({"bank_id": "m", "version": 1, "model": "2PL", "scale": 1.0, "items": items}).dump(
        tmp_path / "bank.json")
    with (tmp_path / "r.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "item_id", "response"])
        for s in range(n):
            w.writerows([f"s{s}", f"i{j}", int(x_rw[s, j])] for j in range(k_rw))
            w.writerows([f"s{s}", f"g{j}", int(x_pc[s, j])] for j in range(k_pc))
    assert main(["drift", "--bank", str(tmp_path / "bank.json"), "--responses", str(tmp_path / "r.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"g0", "g1", "i0"} <= set(out["drifting"]) and len(out["drifting"]) <= 4
    moved = {r["item_id"]: r["d_b"] for r in out["items"]}
    assert all(0.35 < moved[i] < 0.65 for i in ("g0", "g1", "i0"))
    assert abs(out["A"] - 1) < 0.1 and abs(out["B"]) < 0.1


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
