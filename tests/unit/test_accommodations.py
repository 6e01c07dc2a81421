"""Accommodations: set by a teacher (the API) or an admin (a CSV with group variables), copied
into a session when it starts, a time limit scaled by extended time, shown to the tablet and the
teacher, kept in the stored session and recorded in the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from irtcat.adapters.memory import MemoryStudents
from irtcat.domain.bank import ItemBank
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import StoppingPolicy, TestPolicy
from irtcat.domain.session import new_session
from irtcat.domain.stored import pack, unpack
from irtcat.domain.student import ALL_TESTS, Accommodations, StudentProfile, settings_row

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _bank() -> ItemBank:
    return generate_bank(40, "2PL", seed=3, with_content=True)


def test_extended_time_scales_the_limit_and_the_session_keeps_its_accommodations() -> None:
    bank = _bank()
    policy = TestPolicy(test_id="t", stopping=StoppingPolicy(time_limit_seconds=600, max_items=10))
    extra = Accommodations(extended_time=1.5, text_to_speech=True)
    plain = new_session("s0", "u0", policy, bank, None, now=NOW)
    accommodated = new_session("s1", "u1", policy, bank, None, now=NOW, accommodations=extra)
    assert plain.expires_at == NOW + timedelta(seconds=600)
    assert accommodated.expires_at == NOW + timedelta(seconds=900)
    view = json.loads(accommodated.view(bank, NOW).model_dump_json())
    assert view["accommodations"] == {"extended_time": 1.5, "text_to_speech": True, "large_font": False}
    assert view["remaining_seconds"] == 900
    doc = pack(accommodated, bank)
    assert doc["ac"] == {"extended_time": 1.5, "text_to_speech": True} and "ac" not in pack(plain, bank)
    back = unpack(doc, session_id="s1", student_id="u1", status="active", version=1,
                  bank_of=lambda *_: bank, policy_of=lambda *_: policy)
    assert back.accommodations == extra and back.expires_at == accommodated.expires_at
    assert extra.label() == "extended_time=1.5;text_to_speech"


def test_a_test_s_own_accommodations_win_over_those_for_every_test() -> None:
    profile = StudentProfile(student_id="u", updated_at=NOW, accommodations={
        ALL_TESTS: Accommodations(large_font=True), "maths": Accommodations(extended_time=2.0)})
    assert profile.accommodations_for("maths") == Accommodations(extended_time=2.0)
    assert profile.accommodations_for("reading") == Accommodations(large_font=True)
    assert StudentProfile(student_id="v", updated_at=NOW).accommodations_for("maths") is None


def test_accommodations_and_groups_survive_a_finished_session() -> None:
    students = MemoryStudents()
    students.set_accommodations("u", "maths", Accommodations(extended_time=1.25))
    students.set_groups("u", {"language": "es"})
    students.put(StudentProfile(student_id="u", theta=0.4, se=0.3, updated_at=NOW, seen={"maths": ["i1"]}))
    got = students.get("u")
    assert got is not None and got.theta == 0.4 and got.groups == {"language": "es"}
    assert got.accommodations == {"maths": Accommodations(extended_time=1.25)}
    students.set_accommodations("u", "maths", None)
    assert students.get("u").accommodations == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(("row", "reason"), [
    ({"student_id": "bad id"}, "column student_id"),
    ({"student_id": "u1", "accommodation.extended_time": "lots"}, "column accommodation.extended_time: 'lots'"),
    ({"student_id": "u1", "accommodation.extended_time": "9"}, "less than or equal to 4"),
    ({"student_id": "u1", "accommodation.text_to_speech": "maybe"}, "is not yes or no"),
    ({"student_id": "u1", "accommodation.braille": "yes"}, "column accommodation.braille: not one of"),
    ({"student_id": "u1", "group.Home Language": "es"}, "a group name is 1-32 lowercase"),
])
def test_a_bad_import_row_is_named_by_row_and_column(row: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        settings_row(row, "students.csv:3")


def test_an_import_row_gives_accommodations_and_groups() -> None:
    student, test, acc, groups = settings_row({"student_id": "u1", "test_id": "", "accommodation.extended_time": "1.5",
                                               "accommodation.text_to_speech": "yes", "accommodation.large_font": "",
                                               "group.language": "es", "group.sex": ""}, "s.csv:2")
    assert (student, test, groups) == ("u1", ALL_TESTS, {"language": "es"})
    assert acc == Accommodations(extended_time=1.5, text_to_speech=True)
    assert settings_row({"student_id": "u2"}, "s.csv:3")[2] is None


def test_students_import_and_the_teacher_route_against_moto(moto_stack: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``irtcat students import`` writes a table's profiles; the teacher's route reads and sets
    them, a student may not; a session started afterwards carries them."""
    import boto3
    from irtcat.adapters.aws import DynamoStudents, Settings
    from irtcat.cli.main import main
    from irtcat.emulator.api import http_event, id_token_claims, start_session_event

    table = moto_stack.function_by_logical_id("StartSessionFunction").spec.environment["TABLE_NAME"]
    sheet = tmp_path / "students.csv"
    sheet.write_text("student_id,test_id,accommodation.extended_time,accommodation.text_to_speech,group.language\n"
                     "acc-student,sample-math,1.5,yes,es\nbad student,,,,\n")
    import irtcat.cli.items as items

    monkeypatch.setattr(items, "stack_outputs", lambda args, needs: {"StateTableName": table})
    assert main(["students", "import", str(sheet), "--json"]) == 0
    assert main(["students", "import", str(sheet), "--strict"]) == 2
    students = DynamoStudents(Settings(table_name=table, bank_bucket="-", history_stream="-", history_bucket="-"))
    got = students.get("acc-student")
    assert got is not None and got.theta is None and got.groups == {"language": "es"}
    assert got.accommodations == {"sample-math": Accommodations(extended_time=1.5, text_to_speech=True)}
    fn = moto_stack.function_by_logical_id("AccommodationsFunction")
    teacher = id_token_claims("teacher-0001", ("teachers",))

    def call(method: str, body: dict[str, Any] | None, claims: dict[str, Any]) -> tuple[int, Any]:
        out = fn.invoke(http_event(method, "/students/acc-student/accommodations", body,
                                   path_parameters={"student_id": "acc-student"},
                                   route_key=f"{method} /students/{{student_id}}/accommodations", claims=claims))
        return out.payload["statusCode"], json.loads(out.payload["body"])

    status, body = call("GET", None, teacher)
    assert status == 200 and body["accommodations"]["sample-math"]["extended_time"] == 1.5
    status, body = call("PUT", {"test_id": "*", "large_font": True}, teacher)
    assert status == 200 and body["accommodations"]["*"] == {"extended_time": 1.0, "text_to_speech": False,
                                                              "large_font": True}
    status, _ = call("PUT", {"extended_time": 10}, teacher)
    assert status == 400
    status, _ = call("PUT", {"large_font": True}, id_token_claims("acc-student"))
    assert status == 403
    start = moto_stack.function_by_logical_id("StartSessionFunction").invoke(
        start_session_event("acc-student", "sample-math", claims=id_token_claims("acc-student")))
    view = json.loads(start.payload["body"])
    assert view["accommodations"] == {"extended_time": 1.5, "text_to_speech": True, "large_font": False}
    assert boto3.client("dynamodb").get_item(TableName=table, Key={
        "pk": {"S": "STUDENT#acc-student"}, "sk": {"S": "PROFILE"}})["Item"]["groups"]["S"] == '{"language": "es"}'
