"""The named questions on a small hand-made history (DuckDB), the template's Athena resources,
and the dashboard in a real headless browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from irtcat.analytics.duck import connect, run
from irtcat.analytics.queries import NAMES, glue_columns, query
from irtcat.analytics.report import build_report
from irtcat.emulator.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def rec(**kw):  # type: ignore[no-untyped-def]
    base = {"schema_version": 1, "processed_at": "2026-01-05T09:00:00Z", "test_id": "t1", "bank_id": "b",
            "bank_version": 1}
    base.update(kw)
    return base


def answer(sid, student, seq, item, x, theta, se, day="2026-01-05", scored=True, event=None):  # type: ignore[no-untyped-def]
    return rec(record_type="answer", outcome="applied", session_id=sid, student_id=student, seq=seq, item_id=item,
               response=x, theta_after=theta, se_after=se, scored=scored, event_id=event or f"{sid}-{seq}",
               processed_at=f"{day}T09:00:{seq:02d}Z")


def session(sid, student, theta, se, n, reason, day, test="t1"):  # type: ignore[no-untyped-def]
    return rec(record_type="session", outcome="finished", session_id=sid, student_id=student, theta_after=theta,
               se_after=se, items_answered=n, stop_reason=reason, test_id=test, processed_at=f"{day}T10:00:00Z")


@pytest.fixture()
def history(tmp_path: Path) -> Path:
    day1 = [
        answer("s1", "alice", 1, "i1", 1, 0.5, 0.9), answer("s1", "alice", 2, "i2", 0, 0.1, 0.7),
        answer("s1", "alice", 2, "i2", 0, 0.1, 0.7),  # a history duplicate (at-least-once delivery)
        answer("s2", "bob", 1, "i1", 0, -0.5, 0.9), answer("s2", "bob", 2, "p1", 1, -0.5, 0.9, scored=False),
        rec(record_type="answer", outcome="duplicate", session_id="s2", seq=1, item_id="i1", event_id="x"),
        rec(record_type="answer", outcome="rejected", reason="payload is not JSON", raw_event="{"),
        {**session("s1", "alice", 0.1, 0.7, 2, "max_items", "2026-01-05"), "blueprint_version": 1},
        session("s2", "bob", -0.5, 0.9, 1, "se_threshold", "2026-01-05"),
    ]
    day2 = [answer("s3", "alice", 1, "i3", 1, 1.2, 0.8, day="2026-01-06"),
            {**session("s3", "alice", 1.2, 0.8, 1, "max_items", "2026-01-06"), "blueprint_version": 1,
             "relaxed": json.dumps([{"rule": "content_area=algebra", "by": 1.0}])}]
    for day, recs in (("2026-01-05", day1), ("2026-01-06", day2)):
        folder = tmp_path / "history" / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "part-00000.json").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp_path


def test_latest_ability_per_student(history: Path) -> None:
    rows = run(connect(history), "latest_ability")
    assert [(r["student_id"], r["theta"], r["sessions"]) for r in rows] == [("alice", 1.2, 2), ("bob", -0.5, 1)]


def test_session_trajectory_deduplicates(history: Path) -> None:
    rows = run(connect(history), "session_trajectory", "s1")
    assert [(r["seq"], r["item_id"], r["theta_after"]) for r in rows] == [(1, "i1", 0.5), (2, "i2", 0.1)]


def test_ability_by_test_and_day(history: Path) -> None:
    rows = run(connect(history), "ability_by_test_day")
    assert [(str(r["dt"]), r["sessions"], round(r["mean_theta"], 6)) for r in rows] == [
        ("2026-01-05", 2, -0.2), ("2026-01-06", 1, 1.2)]


def test_blueprint_conformance_per_test(history: Path) -> None:
    rows = run(connect(history), "blueprint_conformance")
    assert [(r["test_id"], r["blueprint_version"], r["sessions"], r["sessions_meeting_every_rule"],
             r["sessions_with_relaxed_rules"]) for r in rows] == [("t1", 1, 2, 1, 1)]


def test_length_and_stop_reasons(history: Path) -> None:
    rows = run(connect(history), "length_and_stop_reasons")
    assert {(r["stop_reason"], r["sessions"], r["mean_length"]) for r in rows} == {
        ("max_items", 2, 1.5), ("se_threshold", 1, 1.0)}


def test_item_exposure_counts_each_event_once(history: Path) -> None:
    rows = {r["item_id"]: r["administrations"] for r in run(connect(history), "item_exposure")}
    assert rows == {"i1": 2, "i2": 1, "i3": 1, "p1": 1}


def test_distractor_analysis_shares_options_by_ability_third(tmp_path: Path) -> None:
    """Six sessions on one item: the weakest third chose option 2, the strongest the key (0)."""
    recs = []
    for k, (theta, option) in enumerate([(-2.0, 2), (-1.5, 2), (-0.1, 1), (0.2, 0), (1.4, 0), (2.0, 0)]):
        sid = f"d{k}"
        recs.append(answer(sid, f"u{k}", 1, "q1", int(option == 0), theta, 0.5) | {"option": option, "choice": "B"})
        recs.append(session(sid, f"u{k}", theta, 0.5, 1, "max_items", "2026-01-05"))
    recs.append(answer("dn", "un", 1, "n1", 1, 0.0, 0.5) | {"choice": "12.0"})  # numeric entry: no option
    folder = tmp_path / "history" / "dt=2026-01-05"
    folder.mkdir(parents=True)
    (folder / "part-00000.json").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = run(connect(tmp_path), "distractor_analysis")
    got = {(r["ability_third"], r["option"]): (r["chosen"], r["share"], r["scored_correct"]) for r in rows}
    assert {r["item_id"] for r in rows} == {"q1"}
    assert got == {(1, 2): (2, 1.0, 0), (2, 0): (1, 0.5, 1), (2, 1): (1, 0.5, 0), (3, 0): (2, 1.0, 1)}


def test_category_frequencies_count_partial_credit_categories(tmp_path: Path) -> None:
    """One GRM item answered in categories 0, 2, 3, 3 (one delivered twice), one right/wrong item."""
    recs = [answer(f"c{k}", f"u{k}", 1, "g1", x, 0.0, 0.5) for k, x in enumerate([0, 2, 3, 3])]
    recs.append(recs[-1])  # at least once: the same event twice counts once
    recs.append(answer("c9", "u9", 2, "i1", 1, 0.0, 0.5))
    folder = tmp_path / "history" / "dt=2026-01-05"
    folder.mkdir(parents=True)
    (folder / "part-00000.json").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = run(connect(tmp_path), "category_frequencies")
    got = {(r["item_id"], r["category"]): (r["earned"], r["share"]) for r in rows}
    assert got == {("g1", 0): (1, 0.25), ("g1", 2): (1, 0.25), ("g1", 3): (2, 0.5), ("i1", 1): (1, 1.0)}


def test_pretest_responses(history: Path) -> None:
    rows = run(connect(history), "pretest_responses")
    assert [(r["item_id"], r["responses"]) for r in rows] == [("p1", 1)]


def test_template_named_queries_and_table_match_the_code() -> None:
    t = load_template(ROOT / "template.yaml")["Resources"]
    named = {v["Properties"]["QueryString"] for v in t.values() if v["Type"] == "AWS::Athena::NamedQuery"}
    assert named == {query(n) for n in NAMES}
    table = t["HistoryTable"]["Properties"]["TableInput"]
    assert table["StorageDescriptor"]["Columns"] == glue_columns()
    assert table["Parameters"]["projection.enabled"] == "true"
    wg = t["AnalyticsWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    assert all(v.get("Condition") == "QuickSightEnabled" for v in t.values() if v["Type"].startswith("AWS::QuickSight"))


def test_empty_history_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no history files"):
        connect(tmp_path)


def _chromium() -> str | None:
    """IRTCAT_CHROMIUM if set, else Debian's chromium (installed with apt-get where missing)."""
    if os.environ.get("IRTCAT_CHROMIUM"):
        return os.environ["IRTCAT_CHROMIUM"]
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get"):
        print("[test] installing Debian's chromium for the dashboard test")
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True, timeout=900).returncode:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
            subprocess.run(install, capture_output=True, timeout=900)
    return shutil.which("chromium")


def test_dashboard_renders_in_headless_chromium(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    summary = build_report(history, out)
    page = Path(summary["dashboard"]).read_text()
    assert "<script" in page and "cdn.plot.ly" not in page.split("plotly.js v")[0][-200:]
    # blueprint conformance per test: test, version, sessions, met every rule, relaxed
    assert '<table id="blueprints">' in page and "<td>t1</td><td>1</td><td>2</td><td>1</td><td>1</td>" in page
    assert all(Path(p).stat().st_size > 1000 for p in summary["pngs"])
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed and could not be installed with apt-get")
    shot = out / "dashboard.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
             "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]
    run_ = subprocess.run([browser, *flags, f"--screenshot={shot}", f"file://{summary['dashboard']}"],
                          capture_output=True, text=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 20_000, run_.stderr[-2000:]
    errors = [line for line in run_.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "error" in line)]
    assert not errors, errors
    dom = subprocess.run([browser, *flags, "--dump-dom", f"file://{summary['dashboard']}"],
                         capture_output=True, text=True, timeout=180).stdout
    # plotly drew its SVG charts: the main-svg class only exists once a chart is rendered
    assert dom.count('class="main-svg"') >= 4
