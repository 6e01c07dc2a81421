"""The tablet app in a real browser (Playwright driving Debian's chromium) against the local
stack: a whole test, a submit whose acknowledgement is lost, the result against DynamoDB; and
the API's authentication and ownership rules over real HTTP with real tokens."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from irtcat.domain.policy import StoppingPolicy, TestPolicy

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / ".irtcat" / "test-artifacts"
PASSWORD = "Tablet-pass-1"


def chromium() -> str | None:
    """IRTCAT_CHROMIUM if set, else Debian's chromium (installed with apt-get where missing)."""
    if os.environ.get("IRTCAT_CHROMIUM"):
        return os.environ["IRTCAT_CHROMIUM"]
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get"):
        print("[test] installing Debian's chromium for the browser tests")
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True, timeout=900).returncode:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
            subprocess.run(install, capture_output=True, timeout=900)
        found = shutil.which("chromium")
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from irtcat.demo.run import load_demo_bank
    from irtcat.emulator.runtime import LocalRuntime

    rt = LocalRuntime.up()
    rt.start_api(port=0)
    load_demo_bank(rt, items=200, policy=TestPolicy(stopping=StoppingPolicy(max_items=6, min_items=2,
                                                                             se_threshold=None)))
    accounts = rt.accounts()
    for k in (1, 2, 3):
        accounts.provision(f"tablet-student-{k}", PASSWORD)
    accounts.provision("teacher-1", PASSWORD, teacher=True)
    yield rt
    rt.down()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu",
                                                         "--disable-background-networking"])
        yield b
        b.close()


def take_test(page: Any, url: str, student: str) -> int:
    page.goto(url)
    page.fill("#student", student)
    page.fill("#password", PASSWORD)
    page.click("text=Start")
    answered = 0
    while True:
        page.wait_for_selector("#item:not([hidden]), #result:not([hidden])", timeout=60_000)
        if page.is_visible("#result"):
            return answered
        if answered == 0:
            page.screenshot(path=str(ARTIFACTS / "tablet-item.png"))
        if page.is_visible("#numeric"):  # a numeric-entry item: type the answer
            page.screenshot(path=str(ARTIFACTS / "tablet-numeric.png"))
            page.fill("#numeric-value", "7")
            page.keyboard.press("Enter")
        else:
            page.keyboard.press("1")  # keyboard-accessible answering
        answered += 1
        page.wait_for_selector("#item", state="hidden", timeout=10_000)


def test_a_student_completes_a_test_and_sees_the_dynamodb_result(stack: Any, browser: Any) -> None:
    import boto3
    from irtcat.adapters.aws import DynamoSessions, S3BankStore, Settings

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    answered = take_test(page, stack.api_url + "/", "tablet-student-1")
    page.screenshot(path=str(ARTIFACTS / "tablet-result.png"))
    assert answered == 6 and not errors, errors
    shown_theta = float(page.get_attribute("#result", "data-theta") or "nan")
    env = stack.function("GetSessionFunction").spec.environment
    items = boto3.client("dynamodb").scan(TableName=env["TABLE_NAME"])["Items"]
    settings = Settings(env["TABLE_NAME"], env["BANK_BUCKET"], "-", "-")
    stored = DynamoSessions(settings, S3BankStore(settings))
    sessions = [stored.state_of(i) for i in items if i["pk"]["S"].startswith("SESSION#")]
    mine = [s for s in sessions if s.student_id == "tablet-student-1"]
    assert len(mine) == 1 and mine[0].status == "finished"
    assert shown_theta == pytest.approx(mine[0].theta, abs=1e-9)
    score, _ = mine[0].policy.scale.score(mine[0].theta, mine[0].se)
    assert page.text_content("#score") == str(int(score)) and mine[0].policy.scale.decimals == 0
    assert page.text_content("#level") == f"Level: {mine[0].policy.level(mine[0].theta)}"


def test_a_submit_whose_acknowledgement_is_lost_is_retried_and_counted_once(stack: Any, browser: Any) -> None:
    page = browser.new_page()
    lost = {"count": 0}

    def lose_first_ack(route: Any) -> None:
        if lost["count"] == 0:
            lost["count"] += 1
            route.fetch()  # the answer reaches the stream...
            route.abort("connectionreset")  # ...but the tablet never hears back
        else:
            route.continue_()

    page.route("**/answers", lose_first_ack)
    answered = take_test(page, stack.api_url + "/", "tablet-student-2")
    assert lost["count"] == 1 and answered == 6
    stack.wait_idle(timeout=30)
    from irtcat.demo.export import read_history

    bucket = stack.function("GetSessionFunction").spec.environment["HISTORY_BUCKET"]
    records = [r for r in read_history(bucket) if r.student_id == "tablet-student-2" and r.record_type == "answer"]
    applied = [r for r in records if r.outcome == "applied"]
    assert sorted(r.seq for r in applied) == [1, 2, 3, 4, 5, 6]
    # the retry reaches the stream as a duplicate, or (applied already) the door acknowledges it
    assert [r.seq for r in records if r.outcome == "duplicate"] in ([], [1])


def test_a_timed_test_shows_the_time_left_and_ends_when_it_runs_out(stack: Any, browser: Any) -> None:
    from irtcat.adapters.aws import S3BankStore
    from irtcat.demo.run import settings_of
    from irtcat.domain.policy import TestDefinition

    S3BankStore(settings_of(stack)).put_test(TestDefinition(
        test_id="demo-timed", bank_id="demo-math",
        policy=TestPolicy(stopping=StoppingPolicy(max_items=30, se_threshold=None, time_limit_seconds=12))))
    page = browser.new_page()
    page.goto(stack.api_url + "/")
    page.fill("#student", "tablet-student-3")
    page.fill("#password", PASSWORD)
    page.fill("#test", "demo-timed")
    page.click("text=Start")
    page.wait_for_selector("#timer:not([hidden])", timeout=30_000)
    assert (page.text_content("#timer") or "").startswith("Time left 0:1")
    page.screenshot(path=str(ARTIFACTS / "tablet-timer.png"))
    # the student does not answer: when the time is up the tablet reads the session, which ends it
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert "Your time is up." in (page.text_content("#score-detail") or "")


def test_a_wrong_password_is_refused_with_a_message(stack: Any, browser: Any) -> None:
    page = browser.new_page()
    page.goto(stack.api_url + "/")
    page.fill("#student", "tablet-student-1")
    page.fill("#password", "not-the-password-1")
    page.click("text=Start")
    page.wait_for_selector("#start-error:not(:empty)")
    assert "Could not start" in (page.text_content("#start-error") or "")
    assert page.is_visible("#start") and not page.is_visible("#item")


def test_teacher_view_lists_sessions_with_their_trajectory(stack: Any, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    take_test(page, stack.api_url + "/", "tablet-student-3")
    page.goto(stack.api_url + "/teacher.html")
    page.fill("#teacher", "teacher-1")
    page.fill("#password", PASSWORD)
    page.click("text=Show sessions")
    page.wait_for_selector("#sessions tbody tr")
    row = page.locator("#sessions tbody tr", has_text="tablet-student-3")
    assert row.count() == 1 and "finished" in row.inner_text()
    assert row.locator("svg.trajectory polyline").count() == 1
    page.screenshot(path=str(ARTIFACTS / "teacher-view.png"))
    assert not errors, errors


def _call(url: str, method: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_the_api_lets_students_act_only_as_themselves_and_teachers_read(stack: Any) -> None:

    """Through the local HTTP API with real tokens from the emulator's Cognito: the JWT
    authorizer turns away missing and forged tokens (401); the handlers hold each student to
    their own sessions and keep the session list for teachers (403)."""
    api = stack.api_url
    accounts = stack.accounts()
    alice, bob, teacher = (accounts.sign_in(u, PASSWORD) for u in ("tablet-student-1", "tablet-student-2", "teacher-1"))
    start = {"student_id": "tablet-student-1", "test_id": "demo-math"}

    assert _call(f"{api}/sessions", "POST", start)[0] == 401
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    assert _call(f"{api}/sessions", "POST", start, forged)[0] == 401
    status, body = _call(f"{api}/sessions", "POST", start, bob)
    assert status == 403 and "only act as yourself" in body["message"]

    status, view = _call(f"{api}/sessions", "POST", start, alice)
    assert status == 201
    session = f"{api}/sessions/{view['session_id']}"
    assert _call(session, "GET", token=alice)[0] == 200
    status, body = _call(session, "GET", token=bob)
    assert status == 403 and "another student" in body["message"]
    assert _call(session, "GET", token=teacher)[0] == 200

    assert "key" not in view["item"] and "answer_value" not in view["item"]
    choice = view["item"]["options"][0]["id"] if view["item"]["kind"] == "choice" else 7
    answer = {"schema_version": 2, "event_id": "3f1c6c0e-8a4b-4c69-9d55-6f0f2b0c9a11",
              "session_id": view["session_id"], "student_id": "tablet-student-1",
              "item_id": view["item"]["item_id"], "seq": 1, "choice": choice,
              "answered_at": "2026-11-24T10:00:00+00:00"}
    assert _call(f"{session}/answers", "POST", answer, bob)[0] == 403
    assert _call(f"{session}/answers", "POST", answer, alice)[0] == 202
    # Bob answering as himself on Alice's session is refused at the door (it reads the session)
    intruder = {**answer, "event_id": "7d0e1c2b-3a4f-4e5d-8c6b-9a8f7e6d5c4b", "student_id": "tablet-student-2"}
    status, body = _call(f"{session}/answers", "POST", intruder, bob)
    assert status == 403 and "another student" in body["message"]
    old = {k: v for k, v in answer.items() if k != "choice"} | {"schema_version": 1, "response": 1}
    status, body = _call(f"{session}/answers", "POST", old, alice)
    assert status == 400 and "answer contract version 1" in body["message"]
    stack.wait_idle(timeout=30)
    final = _call(session, "GET", token=alice)[1]
    assert final["answered"] == 1
    late = {**answer, "event_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"}
    status, body = _call(f"{session}/answers", "POST", late, alice)  # seq 1 again, under a new id
    assert status == 409 and "already answered" in body["message"]

    assert _call(f"{api}/tests/demo-math/sessions", "GET", token=alice)[0] == 403
    status, rows = _call(f"{api}/tests/demo-math/sessions", "GET", token=teacher)
    assert status == 200 and any(r["session_id"] == view["session_id"] for r in rows)
