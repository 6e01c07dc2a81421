"""The patches of moto (irtcat.emulator.moto_patches): the version guard, the moto bugs they
fix (docs/moto.md's reproductions must still show them on plain moto), the patched behaviour,
and speed-ups that change nothing a client can see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from irtcat.emulator import moto_patches

ITEM = {"pk": {"S": "SESSION#1"}, "version": {"N": "3"}, "doc": {"S": '{"theta": 0.1}'},
        "nested": {"M": {"a": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}, {"NS": ["1", "2.5"]}]}}},
        "tags": {"SS": ["a", "b"]}}
RESULTS: list[tuple[str, dict[str, Any]]] = [
    ("GetItem", {"Item": ITEM}),
    ("GetItem", {}),
    ("PutItem", {"Attributes": ITEM, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}),
    ("UpdateItem", {"Attributes": {"version": {"N": "4"}}}),
    ("Query", {"Items": [ITEM, ITEM], "Count": 2, "ScannedCount": 2, "LastEvaluatedKey": {"pk": {"S": "a"}}}),
    ("TransactWriteItems", {}),
    ("GetItem", {"Item": {"blob": {"B": b"\x00\x01"}}}),  # binary: moto's serializer encodes it
    ("DescribeTable", {"Table": {"TableName": "t", "ItemCount": 1}}),  # not an item operation
]


@pytest.mark.parametrize(("operation", "result"), RESULTS)
def test_direct_item_results_equal_motos_serializer(operation: str, result: dict[str, Any]) -> None:
    from moto.core.responses import ActionContext, get_service_model
    from moto.core.serialize import get_serializer_class
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    model = get_service_model("dynamodb")
    context = ActionContext(model, model.operation_model(operation), get_serializer_class("dynamodb", "json"),
                            DynamoHandler())
    moto_patches.apply(("direct_item_results",))
    direct = DynamoResult.execute_result
    generic = direct._irtcat_generic  # type: ignore[attr-defined]
    status, headers, body = direct(DynamoResult(result), context)
    status0, headers0, body0 = generic(DynamoResult(result), context)
    assert (status, headers) == (status0, headers0)
    assert json.loads(body) == json.loads(body0)


def test_json_copy_equals_deepcopy_and_shares_nothing() -> None:
    import copy

    from hypothesis import given
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
        max_leaves=30)

    @given(json_values)
    def check(value: Any) -> None:
        copied = moto_patches.copy_json(value)
        assert copied == copy.deepcopy(value)
        if isinstance(copied, dict | list):
            assert copied is not value
            if isinstance(copied, dict):
                copied["new"] = 1
            else:
                copied.append(1)
            assert copied != value

    check()
    odd = {"when": (1, 2), "items": [{"set": {1, 2}}]}  # not JSON: still copied deeply
    copied = moto_patches.copy_json(odd)
    assert copied == odd and copied["items"][0]["set"] is not odd["items"][0]["set"]


DOC = Path(__file__).resolve().parents[2] / "docs" / "moto.md"


def reproductions() -> dict[str, tuple[set[str], str]]:
    """The docs' reproductions by section title: the fixes it names (in backticks in the title's
    parentheses) and its code."""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        names = re.search(r"\(([^)]*)\)\s*$", title)
        code = re.search(r"```python\n(.*?)```", section, re.S)
        assert names and code, f"a reproduction without the fix it motivates or without code: {title}"
        found[title] = (set(re.findall(r"`(\w+)`", names.group(1))), code.group(1))
    return found


def test_every_correctness_fix_has_a_reproduction() -> None:
    correctness = {n for n, p in moto_patches.PATCHES.items() if p.kind == "correctness"}
    named = set().union(*(names for names, _ in reproductions().values()))
    assert named == correctness | {"start_sync_execution", "SERIALISED_SERVICES", "StreamPoller"}
    assert len(reproductions()) == 7


@pytest.mark.parametrize("title", sorted(reproductions()))
def test_plain_moto_still_shows_the_bug(title: str, tmp_path: Path) -> None:
    """Runs on plain moto in a fresh interpreter: when this fails, moto fixed the bug and the
    patch can go (docs/moto.md)."""
    script = tmp_path / "reproduction.py"
    script.write_text(reproductions()[title][1])
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "BUG", run.stdout


def test_an_untested_moto_version_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    expected = rf"moto 9\.9\.9 is installed: install moto\[server\]=={re.escape(moto_patches.MOTO_VERSION)}"
    with pytest.raises(moto_patches.UnsupportedMoto, match=expected):
        moto_patches.apply(())


def test_only_speed_patches_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTCAT_MOTO_PATCHES_OFF", "jsonpath_parses, json_state_copies")
    assert moto_patches.switched_off() == {"jsonpath_parses", "json_state_copies"}
    monkeypatch.setenv("IRTCAT_MOTO_PATCHES_OFF", "signal_execution_ends")
    with pytest.raises(ValueError, match="fix moto bugs"):
        moto_patches.switched_off()
    monkeypatch.setenv("IRTCAT_MOTO_PATCHES_OFF", "no_such_patch")
    with pytest.raises(ValueError, match="no patch named"):
        moto_patches.switched_off()


def test_express_machines_run_as_express_and_start_synchronously(
        fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})

    from moto.stepfunctions.responses import get_backend

    moto_patches.apply(("signal_execution_ends", "machines_run_as_their_type"))
    definition = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": true}}}'
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/r"
        express = sfn.create_state_machine(name="e", type="EXPRESS", roleArn=role, definition=definition)
        standard = sfn.create_state_machine(name="s", type="STANDARD", roleArn=role, definition=definition)
        backend = get_backend("123456789012", "us-east-1")
        assert backend.describe_state_machine(express["stateMachineArn"]).sm_type == "EXPRESS"
        assert backend.describe_state_machine(standard["stateMachineArn"]).sm_type == "STANDARD"
        status, reply = moto_patches.start_sync_execution(
            json.dumps({"stateMachineArn": express["stateMachineArn"], "input": "{}"}).encode())
        assert (status, reply["status"], json.loads(reply["output"])) == (200, "SUCCEEDED", {"ok": 1})
        status, reply = moto_patches.start_sync_execution(
            json.dumps({"stateMachineArn": standard["stateMachineArn"]}).encode())
        assert (status, reply["__type"]) == (400, "StateMachineTypeNotSupported")
        assert moto_patches.start_sync_execution(b"[1]")[1]["__type"] == "SerializationException"


def test_speed_patches_are_in_place_once_applied() -> None:
    """Each speed patch, applied, replaces what it names (the equivalence tests above show the
    ones that rewrite data change nothing; docs/moto.md has what each buys)."""
    from moto import backends
    from moto.stepfunctions.parser.asl.eval import states
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.utils import json_path

    names = ("jsonpath_parses", "json_state_copies", "asl_parse_trees", "module_list", "machines_run_as_their_type")
    assert moto_patches.apply(names) == list(names)
    assert hasattr(json_path.parse, "cache_info")
    assert states.copy.deepcopy is moto_patches.copy_json  # type: ignore[attr-defined]
    assert backends.list_of_moto_modules() is backends.list_of_moto_modules()
    definition = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}'
    parse = asl_parser.AmazonStateLanguageParser.parse
    first, second = parse(definition), parse(definition)
    assert first[1] is second[1] and first[0] is not second[0]  # one tree, fresh components



def test_a_stream_read_after_a_failed_transaction_sees_the_table_as_it_is(fake_aws: None) -> None:
    """With the patch (the emulator applies it), the reproduction of docs/moto.md item 6 reads
    what AWS would: no record of the failed transaction, and the next real write."""
    title = next(t for t in reproductions() if "stream_reads_follow_the_table" in t)
    code = reproductions()[title][1]
    patched = "from irtcat.emulator import moto_patches\nmoto_patches.apply(('stream_reads_follow_the_table',))\n"
    run = subprocess.run([sys.executable, "-c", patched + code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines() == ["read after the failed transaction: ['c'] (on AWS: ['c'])", "OK"]
