"""The README's commands as a user runs them: irtcat local up / invoke / down, and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
IRTCAT = [sys.executable, "-m", "irtcat.cli.main"]


def test_local_up_invoke_down(tmp_path: Path) -> None:
    data = tmp_path / "state"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([*IRTCAT, "local", "up", "--port", "0", "--api-port", "0", "--demo-bank",
                           "--data-dir", str(data)], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        state = data / "runtime.json"
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.2)
        assert state.exists(), (tmp_path / "up.log").read_text()
        info = json.loads(state.read_text())
        assert info["endpoint"].startswith("http://127.0.0.1:") and "AnswerStreamName" in info["outputs"]
        assert info["started_seconds"] < 15
        sam_env = json.loads((data / "sam-env.json").read_text())  # for sam local invoke --env-vars
        port = info["endpoint"].rsplit(":", 1)[1]
        assert sam_env["UpdateThetaFunction"]["IRTCAT_AWS_ENDPOINT"] == f"http://host.docker.internal:{port}"
        inv = subprocess.run([*IRTCAT, "local", "invoke", "StartSessionFunction", "-e",
                              "events/start_session.json", "--data-dir", str(data)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        # the running stack has no test 'sample-math' loaded: a clean 404, not a crash
        assert inv.returncode == 0, inv.stderr
        assert json.loads(inv.stdout)["statusCode"] == 404 and "against the local stack" in inv.stderr
        bad = subprocess.run([*IRTCAT, "local", "invoke", "NoSuchFunction", "--data-dir", str(data)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "no function" in bad.stderr
        # the calibration state machine runs on the stack: the demo bank has no answers yet
        cal = subprocess.run([*IRTCAT, "local", "calibrate", "--json", "--data-dir", str(data)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert cal.returncode == 0, cal.stderr[-2000:]
        run = json.loads(cal.stdout)
        assert run["status"] == "SUCCEEDED" and run["phase"] == "nothing" and run["version_after"] == 1
        down = subprocess.run([*IRTCAT, "local", "down", "--data-dir", str(data)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0 and "stopped" in down.stderr, (tmp_path / "up.log").read_text()[-2000:]
        up.wait(timeout=30)
        assert not state.exists()
    finally:
        if up.poll() is None:
            up.kill()


def test_demo_command_json_summary(tmp_path: Path) -> None:
    """The demo on a mixed bank (3PL, GRM and GPCM items): partial-credit answers are scored in
    categories, every session ends with a scale score and a level, nothing is lost."""
    env = {**os.environ}
    env.pop("AWS_ENDPOINT_URL", None)
    run = subprocess.run([*IRTCAT, "local", "demo", "--students", "3", "--models", "3PL,GRM,GPCM", "--json",
                          "--report-dir", str(tmp_path / "report")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    for key in ("sessions", "answers_published", "answers_applied", "answers_lost", "executions_failed",
                "answers_per_second", "sustained_answers_per_second", "report_dir"):
        assert key in summary
    assert summary["sessions"] == 3 and summary["answers_lost"] == 0 and summary["executions_failed"] == 0
    assert summary["answers_applied"] == summary["answers_unique"] == summary["answers_in_history"]
    assert Path(summary["dashboard"]).exists()
    health = json.loads((Path(summary["health"]).parent / "health.json").read_text())  # the bank's health page
    assert health["sessions"] == 3 and health["tests"][0]["sessions"] == 3 and health["items"]
    files = list((tmp_path / "report" / "history").glob("dt=*/part-*.json"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    answers = [r for r in records if r["record_type"] == "answer" and r["outcome"] == "applied"]
    assert any((r.get("response") or 0) >= 2 for r in answers)  # partial-credit categories above 1
    finished = [r for r in records if r["record_type"] == "session"]
    assert finished and all(r.get("level") and r.get("scale_score") is not None for r in finished)


def test_a_small_chaos_run_loses_nothing_and_quarantines_every_poison_record(tmp_path: Path) -> None:
    """The chaos benchmark in small: pipeline containers killed at random while 8 tablets
    answer, with faults, resends, reorders and poison records of every kind, and the whole
    stack killed and started again on its data folder a third of the way through."""
    from irtcat.demo.run import run_chaos

    s = run_chaos(8, seed=11, report_dir=tmp_path, garbage_rate=0.08)
    assert s["sessions_finished"] == 8 and not s["tablet_errors"]
    assert s["containers_killed"] >= 5
    assert s["restarts"] == 1 and s["changes_replayed"] > 0 and s["drained"] and s["drain_seconds"] is not None
    assert s["answers_lost"] == 0 and s["answers_double_applied"] == 0
    assert s["answers_applied"] == s["answers_unique"] == s["answers_in_history"]
    assert s["garbage_sent"] > 0 and s["rejected"] == s["garbage_sent"]


def test_a_small_soak_loses_nothing_and_rejects_exactly_the_garbage(tmp_path: Path) -> None:
    """The soak of benchmarks/ in small: resends, reordering, garbage and injected throttling of
    DynamoDB, Firehose and Lambda at once (the benchmark runs 200 sessions with 1% garbage;
    here 5%, so that 8 sessions send some)."""
    from irtcat.demo.run import run_soak

    s = run_soak(8, faults={"dynamodb": 0.03, "firehose": 0.03, "lambda": 0.003}, report_dir=tmp_path, seed=5,
                 garbage_rate=0.05)
    assert s["sessions_finished"] == 8 and not s["tablet_errors"]
    assert s["answers_lost"] == 0 and s["answers_double_applied"] == 0
    assert s["answers_applied"] == s["answers_unique"] and s["answers_in_history"] == s["answers_unique"]
    assert s["garbage_sent"] > 0 and s["rejected"] == s["garbage_sent"]
    assert s["reordered_sent"] > 0 and s["duplicates_acknowledged"] > 0
    assert s["faults_injected"].get("dynamodb", 0) > 0 and s["faults_injected"].get("firehose", 0) > 0
