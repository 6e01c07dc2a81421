"""``irtcat report --history DIR --health --bank B`` on a simulated history: reliability per
test, item statistics on adaptive data, and sessions flagged for rapid guessing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from irtcat.cli.main import main
from irtcat.domain.generate import generate_bank


def _history(tmp_path: Path, sessions: int = 300, seed: int = 9) -> tuple[Path, Path, set[str]]:
    """Sessions of 20 items drawn from a 60-item 2PL bank; 10% of the students guess rapidly
    (1-2 s, a quarter right) on 30% of their items; the rest take about half a minute."""
    rng = np.random.default_rng(seed)
    bank = generate_bank(60, "2PL", seed=seed, bank_id="b")
    bank.dump(tmp_path / "bank.json")
    a = np.array([it.a for it in bank.items]) * bank.scale
    b = np.array([it.b for it in bank.items], float)
    grid = np.linspace(-4, 4, 81)
    records: list[dict[str, Any]] = []
    guessers = set()
    for s in range(sessions):
        sid, theta = f"s{s}", rng.normal()
        guesser = s % 10 == 0
        if guesser:
            guessers.add(sid)
        items = rng.choice(60, 20, replace=False)
        p = 1 / (1 + np.exp(-a[items] * (theta - b[items])))
        rapid = guesser & (rng.random(20) < 0.3)
        x = np.where(rapid, rng.random(20) < 0.25, rng.random(20) < p).astype(int)
        ms = np.where(rapid, rng.uniform(1000, 2000, 20), np.exp(rng.normal(np.log(30000), 0.3, 20)))
        curve = 1 / (1 + np.exp(-a[items, None] * (grid[None, :] - b[items, None])))
        post = np.exp(-grid**2 / 2) * np.prod(np.where(x[:, None] == 1, curve, 1 - curve), axis=0)
        post /= post.sum()
        eap = float(post @ grid)
        se = float(np.sqrt(post @ (grid - eap) ** 2))
        base = {"schema_version": 1, "processed_at": "2026-01-05T09:00:00Z", "test_id": "t1", "bank_id": "b",
                "bank_version": 1, "session_id": sid, "student_id": f"u{s}"}
        for k, j in enumerate(items):
            records.append({**base, "record_type": "answer", "outcome": "applied", "seq": k + 1,
                            "item_id": bank.items[j].item_id, "response": int(x[k]), "scored": True,
                            "response_time_ms": int(ms[k]), "event_id": f"{sid}-{k}"})
        records.append({**base, "record_type": "session", "outcome": "finished", "theta_after": eap, "se_after": se,
                        "items_answered": 20, "stop_reason": "max_items", "scale_score": round(500 + 100 * eap),
                        "scale_se": round(100 * se, 1)})
    folder = tmp_path / "history" / "dt=2026-01-05"
    folder.mkdir(parents=True)
    (folder / "part-00000.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path, tmp_path / "bank.json", guessers


def test_health_report_on_a_history(tmp_path: Path, capsys: Any) -> None:
    history, bank, guessers = _history(tmp_path)
    out = tmp_path / "report"
    assert main(["report", "--history", str(history), "--health", "--bank", str(bank), "--out", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    test = report["tests"][0]
    assert test["sessions"] == 300 and test["median_length"] == 20
    assert 0.7 < test["empirical_reliability"] < 0.95 and test["empirical_reliability"] <= test[
        "information_reliability_bound"] + 0.05
    assert "not comparable" in report["note"] and len(report["items"]) == 60
    # the SEM on the reporting scale, by band of scale score: larger where the bank informs less
    bands = test["csem_scale"]
    assert len(bands) == 5 and sum(b["sessions"] for b in bands) == 300
    assert all(20 < b["sem"] < 80 for b in bands)
    assert all(i["rmsd"] is not None and 0 <= i["exposure"] <= 1 for i in report["items"])
    flagged = {s["session_id"] for s in report["flagged_sessions"]
               if any("effort" in r for r in s["reasons"])}
    assert len(flagged & guessers) >= 0.9 * len(guessers)
    assert len(flagged - guessers) <= 0.05 * (300 - len(guessers))
    page = (out / "health.html").read_text()
    assert "Bank health: b v1" in page and "<h2>Flagged sessions</h2>" in page and page.count("<svg") == 4
    assert main(["report", "--history", str(history), "--health", "--out", str(out)]) == 2
    assert "--health needs --bank" in capsys.readouterr().err


def test_the_dashboard_shows_the_bank_and_links_the_health_page_beside_it(tmp_path: Path) -> None:
    from irtcat.analytics.report import build_report

    history, bank, _ = _history(tmp_path, sessions=30)
    out = tmp_path / "report"
    assert main(["report", "--history", str(history), "--health", "--bank", str(bank), "--out", str(out)]) == 0
    page = Path(build_report(history, out)["dashboard"]).read_text()
    assert 'href="health.html"' in page and "<h2 id='bank'>The bank: b v1</h2>" in page
    health = json.loads((out / "health.json").read_text())
    reliability = f"{health['tests'][0]['empirical_reliability']:.2f}"
    assert f"<td>t1</td><td>30</td><td>{reliability}</td>" in page
    alone = Path(build_report(history, tmp_path / "alone")["dashboard"]).read_text()
    assert 'href="health.html"' not in alone


def test_the_health_page_shows_dif_between_the_groups_the_history_carries(tmp_path: Path) -> None:
    """800 + 800 sessions on 12 2PL items (adaptive-looking: each takes 10 of them); items 0-2
    are harder for the focal group by 1.2 logits. The groups come as the pipeline ships them
    (groups/dt=.../); the page finds those items (ETS C), not the others, and draws both
    groups' curves."""
    from irtcat.analytics.health import build_health
    from irtcat.domain.bank import ItemBank
    from irtcat.irt.datagen import planted_dif

    x, focal, a, b, _ = planted_dif(800, 12, seed=21)
    bank = ItemBank.model_validate({"bank_id": "d", "version": 1, "model": "2PL", "scale": 1.0, "items": [
        {"item_id": f"q{j:02d}", "a": float(a[j]), "b": float(b[j])} for j in range(12)]})
    rng = np.random.default_rng(3)
    records, groups = [], []
    for s in range(x.shape[0]):
        base = {"schema_version": 1, "processed_at": "2026-01-05T09:00:00Z", "test_id": "t1", "bank_id": "d",
                "bank_version": 1, "session_id": f"s{s}", "student_id": f"u{s}"}
        taken = np.sort(rng.choice(12, 10, replace=False))
        for k, j in enumerate(taken):
            records.append({**base, "record_type": "answer", "outcome": "applied", "seq": k + 1, "item_id": f"q{j:02d}",
                            "response": int(x[s, j]), "scored": True, "event_id": f"s{s}-{k}"})
        records.append({**base, "record_type": "session", "outcome": "finished", "theta_after": 0.0, "se_after": 0.5,
                        "items_answered": 10})
        groups.append({**base, "record_type": "groups", "outcome": "finished",
                       "groups": json.dumps({"language": "es" if focal[s] else "en"})})
    for prefix, rows in (("history", records), ("groups", groups)):
        folder = tmp_path / prefix / "dt=2026-01-05"
        folder.mkdir(parents=True)
        (folder / "part-00000.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_health(tmp_path, bank, tmp_path / "out")
    study = report["dif"][0]
    assert (study["variable"], study["focal"], study["reference"]) in (("language", "es", "en"),
                                                                        ("language", "en", "es"))
    assert study["matching"] == "ability strata"
    by_id = {i["item_id"]: i for i in study["items"]}
    planted = ["q00", "q01", "q02"]
    assert all(by_id[i]["flagged"] and by_id[i]["ets_class"] == "C" for i in planted)
    assert sum(by_id[f"q{j:02d}"]["flagged"] for j in range(4, 12)) <= 1
    curve = by_id["q00"]["curve"]
    assert len(curve["theta"]) == 6 and all(v is not None for v in curve["focal"] + curve["reference"])
    page = (tmp_path / "out" / "health.html").read_text()
    assert "<h2>Differential item functioning</h2>" in page and "q00 (MH delta" in page
    assert page.count("focal (orange), reference (blue)") == 4
