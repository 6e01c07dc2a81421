"""A local stack that survives its process: ``irtcat local up`` killed with SIGKILL while answers
it acknowledged are still in the pipeline, started again on the same ``--data-dir``, applies
every one of them; a clean ``local down`` / ``up`` keeps everything; tokens issued before a
restart still work after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
IRTCAT = [sys.executable, "-m", "irtcat.cli.main"]
STUDENTS = [f"student-{k:04d}" for k in range(1, 7)]


def _call(url: str, method: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method),
                                    timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


class Stack:
    """``irtcat local up`` in a process of its own, on a data folder."""

    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = data, log
        state = data / "runtime.json"
        old_pid = json.loads(state.read_text())["pid"] if state.exists() else None
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_ENDPOINT_URL", None)
        self.process = subprocess.Popen([*IRTCAT, "local", "up", "--port", "0", "--api-port", "0", "--demo-bank",
                                         "--accounts", str(len(STUDENTS)), "--data-dir", str(data)],
                                        cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            if state.exists():
                info = json.loads(state.read_text())
                if info["pid"] != old_pid:
                    self.info: dict[str, Any] = info
                    return
            time.sleep(0.2)
        raise AssertionError(f"the stack did not come up:\n{log.read_text()[-3000:]}")

    @property
    def api(self) -> str:
        return str(self.info["api_url"])

    def tokens(self) -> dict[str, str]:
        import boto3

        idp = boto3.client("cognito-idp", endpoint_url=self.info["endpoint"], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        client_id = self.info["outputs"]["TabletClientId"]
        password = self.info["accounts"]["password"]
        return {s: idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": s, "PASSWORD": password}
                                     )["AuthenticationResult"]["IdToken"] for s in STUDENTS}

    def kill_9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def down(self) -> None:
        subprocess.run([*IRTCAT, "local", "down", "--data-dir", str(self.data)], cwd=ROOT, timeout=120,
                       capture_output=True)
        self.process.wait(timeout=60)


def _members(group: int) -> int:
    """How many live (not zombie) processes are in process group ``group`` (``ps``, as on macOS)."""
    rows = subprocess.run(["ps", "-A", "-o", "pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return sum(1 for row in rows.splitlines() if row.split()[:1] == [str(group)] and not row.split()[1].startswith("Z"))


def _answer(api: str, token: str, student: str, view: dict[str, Any]) -> dict[str, Any]:
    item = view["item"]
    choice = item["options"][0]["id"] if item["kind"] == "choice" else 7
    answer = {"schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": view["session_id"],
              "student_id": student, "item_id": item["item_id"], "seq": item["seq"], "choice": choice,
              "answered_at": "2026-12-02T10:00:00+00:00"}
    status, body = _call(f"{api}/sessions/{view['session_id']}/answers", "POST", answer, token)
    assert status == 202, body
    return answer


def _wait_answered(api: str, tokens: dict[str, str], sessions: dict[str, str], answered: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    views: dict[str, Any] = {}
    while time.monotonic() < deadline:
        views = {s: _call(f"{api}/sessions/{sid}", "GET", token=tokens[s])[1] for s, sid in sessions.items()}
        if all(v.get("answered", 0) >= answered for v in views.values()):
            return views
        time.sleep(0.5)
    raise AssertionError(f"not every session has {answered} answers applied: {views}")


def test_a_stack_killed_with_sigkill_applies_every_acknowledged_answer_after_a_restart(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "up.log"
    first = Stack(data, log)
    tokens = first.tokens()
    sessions: dict[str, str] = {}
    acknowledged: list[dict[str, Any]] = []
    try:
        for student in STUDENTS:
            status, view = _call(f"{first.api}/sessions", "POST", {"student_id": student, "test_id": "demo-math"},
                                 tokens[student])
            assert status == 201, view
            sessions[student] = view["session_id"]
            acknowledged.append(_answer(first.api, tokens[student], student, view))
    finally:
        group = int(first.info["process_group"])
        assert _members(group) >= 2, "the stack's processes are not in its group"
        first.kill_9()  # right after the last 202: some answers are still on their way
    # its processes (service process, zygote, containers mid-invocation) die with it
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _members(group):
        time.sleep(0.1)
    assert _members(group) == 0, f"processes of the killed stack live on: {_members(group)}"

    # the journal the killed stack left: answers it acknowledged but had not yet applied
    from irtcat.emulator.journal import entries

    writes = [e.body.decode("utf-8", "replace") for e in entries(data / "state" / "journal-services.jsonl")
              if e.headers.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB")]
    in_flight = [a for a in acknowledged if not any(a["event_id"] in w for w in writes)]
    assert in_flight, "every answer was applied before the kill: the test proves nothing"

    second = Stack(data, log)
    try:
        assert "changes replayed" in log.read_text()
        # the tokens issued by the killed stack still sign in to this one (same pool, same keys)
        views = _wait_answered(second.api, tokens, sessions, 1)
        assert all(v["status"] == "active" and v["item"]["seq"] == 2 for v in views.values())
        for student in STUDENTS:  # and the pipeline goes on
            acknowledged.append(_answer(second.api, tokens[student], student, views[student]))
        _wait_answered(second.api, tokens, sessions, 2)
    finally:
        second.down()

    third = Stack(data, log)  # after a clean down: everything is still there
    try:
        views = _wait_answered(third.api, tokens, sessions, 2)
        assert all(v["answered"] == 2 for v in views.values())
        import boto3

        s3 = boto3.client("s3", endpoint_url=third.info["endpoint"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        bucket = third.info["outputs"]["HistoryBucketName"]
        applied: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(applied) < len(acknowledged):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="history/"):
                for obj in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                    applied |= {r["event_id"] for r in map(json.loads, body.splitlines())
                                if r.get("record_type") == "answer" and r.get("outcome") == "applied"}
            time.sleep(0.5)
        # every acknowledged answer has its applied record in the history (once, after de-duplication)
        assert {a["event_id"] for a in acknowledged} <= applied
    finally:
        third.down()
