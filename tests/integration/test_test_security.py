"""Test security on the whole local pipeline: after a demo, no key anywhere (API replies, the
stream, DynamoDB, history, quarantine, the exported report, function logs); a tampered tablet
gets clear refusals and changes no score."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from irtcat.demo.run import TEST_ID, run_demo
from irtcat.emulator.api import get_session_event, http_event, id_token_claims, start_session_event
from irtcat.emulator.containers import ContainerPool
from irtcat.emulator.runtime import LocalRuntime

from .targets import stream_records

pytestmark = pytest.mark.integration

# a field that would carry a key, in JSON or in a log line
KEY_FIELD = re.compile(r'"(key|answer_value|correct|is_correct|correct_option|credits|credit_bands)"\s*:')


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, dict[str, Any], Path]]:
    rt = LocalRuntime.up(parameters={"StreamShardCount": "2", "PipeBatchSize": "10"})
    report = tmp_path_factory.mktemp("report")
    try:
        # a mixed bank: partial-credit items' credits must stay on the server as keys do
        summary = run_demo(students=4, seed=4, garbage_rate=0.3, report_dir=report, rt=rt,
                           models=["3PL", "GRM", "GPCM"])
        yield rt, summary, report
    finally:
        rt.down()


def _api(rt: LocalRuntime, logical_id: str, event: dict[str, Any]) -> tuple[int, str]:
    out = rt.invoke(logical_id, event)
    assert out.error is None, out.payload
    return int(out.payload["statusCode"]), str(out.payload["body"])


def _without_libraries(text: str) -> str:
    """A page without its embedded script libraries (plotly.js uses "key" as a JavaScript
    property name); the data a page carries stays."""
    return re.sub(r"<script[^>]*>(?:(?!</script>).){100000,}?</script>", "", text, flags=re.S)


def test_no_key_leaves_the_server_in_a_whole_demo(demo: tuple[LocalRuntime, dict[str, Any], Path]) -> None:
    rt, summary, report = demo
    assert summary["answers_lost"] == 0 and summary["rejected"] == summary["garbage_sent"] > 0
    outputs = rt.stack.outputs()
    places: dict[str, list[str]] = {}
    # every route of the session API, as the demo's students and a teacher call it
    student = "key-hunter"
    status, started = _api(rt, "StartSessionFunction", start_session_event(student, TEST_ID,
                                                                        claims=id_token_claims(student)))
    view = json.loads(started)
    sid = view["session_id"]
    _, read = _api(rt, "GetSessionFunction", get_session_event(sid, claims=id_token_claims(student)))
    _, listed = _api(rt, "ListSessionsFunction", http_event(
        "GET", f"/tests/{TEST_ID}/sessions", path_parameters={"test_id": TEST_ID},
        route_key="GET /tests/{test_id}/sessions", claims=id_token_claims("t1", ("teachers",))))
    answer = {"schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": sid, "student_id": student,
              "item_id": view["item"]["item_id"], "seq": 1,
              "choice": view["item"]["options"][0]["id"] if view["item"]["options"] else 1.0,
              "answered_at": datetime.now(UTC).isoformat()}
    _, posted = _api(rt, "PublishAnswerFunction", http_event(
        "POST", f"/sessions/{sid}/answers", answer, path_parameters={"session_id": sid},
        route_key="POST /sessions/{session_id}/answers", claims=id_token_claims(student)))
    assert status == 201
    places["api"] = [started, read, listed, posted]
    places["stream"] = [r.decode("utf-8", "replace") for r in stream_records(outputs["AnswerStreamName"])]
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    places["dynamodb"] = [json.dumps(item) for page in ddb.get_paginator("scan").paginate(
        TableName=outputs["StateTableName"]) for item in page["Items"]]
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = outputs["HistoryBucketName"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    objects = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("utf-8", "replace") for k in keys}
    places["history"] = [v for k, v in objects.items() if k.startswith("history/")]
    places["quarantine"] = [v for k, v in objects.items() if k.startswith("quarantine/")]
    places["report"] = [_without_libraries(p.read_text(errors="replace")) for p in report.rglob("*") if p.is_file()]
    places["logs"] = [log for pool in rt.stack.runners.values() if isinstance(pool, ContainerPool)
                      for log in pool.recent_logs]
    for where in ("api", "stream", "dynamodb", "history", "quarantine", "logs"):
        assert places[where], f"nothing found to scan in {where}"
    leaks = [(where, KEY_FIELD.search(text).group(0), text[:200]) for where, texts in places.items()  # type: ignore[union-attr]
             for text in texts if KEY_FIELD.search(text)]
    assert not leaks, leaks[:3]
    # the history keeps what the students chose and the score the server gave it
    applied = [json.loads(line) for text in places["history"] for line in text.splitlines()
               if '"outcome":"applied"' in line.replace(" ", "")]
    assert applied and all(r["choice"] is not None and r["response"] in (0, 1, 2, 3) for r in applied)
    assert any(r["response"] >= 2 for r in applied)  # partial-credit items scored in categories


def test_a_tampered_tablet_is_refused_and_changes_no_score(demo: tuple[LocalRuntime, dict[str, Any], Path]) -> None:
    rt, _summary, _ = demo
    me, victim = "tamperer", "honest-student"
    views = {}
    for who in (me, victim):
        status, body = _api(rt, "StartSessionFunction", start_session_event(who, TEST_ID, claims=id_token_claims(who)))
        assert status == 201
        views[who] = json.loads(body)
    mine, theirs = views[me], views[victim]
    base = {"schema_version": 2, "session_id": mine["session_id"], "student_id": me,
            "item_id": mine["item"]["item_id"], "seq": 1, "answered_at": datetime.now(UTC).isoformat()}

    def post(body: dict[str, Any], session_id: str) -> tuple[int, str]:
        return _api(rt, "PublishAnswerFunction", http_event(
            "POST", f"/sessions/{session_id}/answers", body, path_parameters={"session_id": session_id},
            route_key="POST /sessions/{session_id}/answers", claims=id_token_claims(me)))

    old = {k: v for k, v in base.items() if k != "schema_version"} | {"schema_version": 1, "response": 1,
                                                                       "event_id": str(uuid.uuid4())}
    status, body = post(old, mine["session_id"])
    assert status == 400 and "answer contract version 1" in body
    status, body = post(base | {"event_id": str(uuid.uuid4()), "choice": "A", "seq": 2}, mine["session_id"])
    assert status == 409 and "not the item being served" in body
    unseen = "Z" if mine["item"]["kind"] == "choice" else "A"
    status, body = post(base | {"event_id": str(uuid.uuid4()), "choice": unseen}, mine["session_id"])
    assert status == 400 and ("is not one of the options" in body or "not a number" in body)
    other = base | {"event_id": str(uuid.uuid4()), "session_id": theirs["session_id"], "choice": "A",
                    "item_id": theirs["item"]["item_id"]}
    status, body = post(other, theirs["session_id"])
    assert status == 403 and "another student" in body
    other_as_victim = other | {"student_id": victim}
    status, body = post(other_as_victim, theirs["session_id"])
    assert status == 403 and "only act as yourself" in body
    # past the door, straight onto the stream: the pipeline refuses each with its reason
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    stream = rt.stack.outputs()["AnswerStreamName"]
    forged = [
        (old | {"event_id": str(uuid.uuid4())}, "answer contract version 1"),
        (base | {"event_id": str(uuid.uuid4()), "choice": "Z"}, "is not one of the options"),
        (other_as_victim | {"event_id": str(uuid.uuid4()), "student_id": me}, "another student"),
    ]
    if mine["item"]["kind"] == "numeric":
        forged[1] = (base | {"event_id": str(uuid.uuid4()), "choice": "A"}, "is not a number")
    for body, _ in forged:
        kinesis.put_record(StreamName=stream, Data=json.dumps(body).encode(), PartitionKey=body["session_id"])
    history_bucket = rt.stack.outputs()["HistoryBucketName"]
    s3 = boto3.client("s3", region_name="us-east-1")

    def reasons() -> list[str] | None:
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=history_bucket, Prefix="quarantine/"):
            for obj in page.get("Contents", []):
                parked = json.loads(s3.get_object(Bucket=history_bucket, Key=obj["Key"])["Body"].read())
                if any(b["event_id"] in parked["raw"] for b, _ in forged):
                    found.append(parked["reason"])
        return found if len(found) >= len(forged) else None

    import time

    deadline = time.monotonic() + 60
    found = None
    while time.monotonic() < deadline and not (found := reasons()):
        time.sleep(0.5)
    assert found is not None, "the forged answers were not all quarantined"
    for _, words in forged:
        assert any(words in r for r in found), (words, found)
    for who, view in views.items():
        _, now = _api(rt, "GetSessionFunction", get_session_event(view["session_id"], claims=id_token_claims(who)))
        assert json.loads(now)["answered"] == 0  # no score moved
