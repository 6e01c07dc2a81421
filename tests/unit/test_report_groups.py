"""Group variables for DIF: a student's groups live in their profile, never reach the tablet,
and enter the history only for the variables the test's policy reports, as a groups record
shipped to the bucket's groups/ prefix (its own Firehose stream, its own Glue table), which the
bucket policy lets only the analytics role read."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
from irtcat.adapters.memory import MemoryBanks, MemoryHistory, MemorySessions, MemoryStudents
from irtcat.domain.api import StartSessionRequest
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import StoppingPolicy, TestDefinition, TestPolicy
from irtcat.domain.steps import finished_records, start_session
from irtcat.emulator.template import load_template

POLICY = TestPolicy(sympson_hetter=False, report_groups=["language"],
                    stopping=StoppingPolicy(max_items=5, min_items=5, se_threshold=None))


def test_a_session_keeps_the_groups_its_policy_reports_and_the_tablet_sees_none() -> None:
    banks = MemoryBanks()
    banks.publish(generate_bank(40, "2PL", seed=1))
    banks.put_test(TestDefinition(test_id="t", bank_id=banks.banks[next(iter(banks.banks))].bank_id, policy=POLICY))
    students = MemoryStudents()
    students.set_groups("s1", {"language": "es", "sex": "f"})
    history = MemoryHistory()
    sessions = MemorySessions(catalog=banks, students=students, history=history)
    view, _ = start_session(StartSessionRequest(student_id="s1", test_id="t"), sessions, students, banks)
    assert "language" not in view.model_dump_json() and "sex" not in view.model_dump_json()
    state = sessions.get(view.session_id)
    assert state is not None and state.groups == {"language": "es"}
    done = state.model_copy(update={"status": "finished", "stop_reason": "max_items"})
    records = finished_records(done)
    assert [r.record_type for r in records] == ["session", "groups"]
    assert json.loads(records[1].groups or "") == {"language": "es"} and records[0].groups is None
    assert finished_records(done.model_copy(update={"groups": {}}))[-1].record_type == "session"


def test_groups_records_go_to_their_own_prefix(moto_stack: Any, monkeypatch: Any) -> None:
    from irtcat.adapters.aws import FirehoseHistory, Settings
    from irtcat.domain.history import HistoryRecord

    env = moto_stack.function_by_logical_id("ShipHistoryFunction").spec.environment
    monkeypatch.setenv("GROUPS_STREAM", env["GROUPS_STREAM"])
    sink = FirehoseHistory(Settings(table_name="-", bank_bucket="-", history_stream=env["HISTORY_STREAM"],
                                    history_bucket=env["HISTORY_BUCKET"]))
    at = "2026-12-06T09:00:00Z"
    sink.put([HistoryRecord.model_validate({"record_type": "session", "outcome": "finished", "processed_at": at,
                                            "session_id": "x1"}),
              HistoryRecord.model_validate({"record_type": "groups", "outcome": "finished", "processed_at": at,
                                            "session_id": "x1", "groups": '{"language": "es"}'})])
    s3 = boto3.client("s3")
    bucket = env["HISTORY_BUCKET"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def lines(prefix: str) -> list[dict[str, Any]]:
        out = []
        for key in keys:
            if key.startswith(prefix):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
                out += [json.loads(line) for line in text.decode().splitlines() if line.strip()]
        return out

    history, groups = lines("history/"), lines("groups/")
    assert [r["record_type"] for r in history if r.get("session_id") == "x1"] == ["session"]
    assert all(r.get("record_type") != "groups" for r in history)
    assert [(r["session_id"], r["groups"]) for r in groups] == [("x1", '{"language": "es"}')]


def test_only_the_analytics_role_reads_groups(root: Any) -> None:
    resources = load_template(root / "template.yaml")["Resources"]
    statements = resources["HistoryBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = next(s for s in statements if s.get("Sid") == "GroupsForAnalyticsOnly")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:GetObject"
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["AnalyticsRole", "Arn"]}}}
    assert resources["GroupsDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"].startswith(
        "groups/")
    columns = resources["GroupsTable"]["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == ["session_id", "student_id", "test_id", "processed_at", "groups"]
    history_columns = resources["HistoryTable"]["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    assert "groups" not in {c["Name"] for c in history_columns}
