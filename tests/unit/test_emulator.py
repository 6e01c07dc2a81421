"""The local emulator's speed-ups of moto change nothing that a client can see."""

from __future__ import annotations

import json
from typing import Any

import pytest
from irtcat.emulator import server

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
    server._serialise_item_results_directly()
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
        copied = server.copy_json(value)
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
    copied = server.copy_json(odd)
    assert copied == odd and copied["items"][0]["set"] is not odd["items"][0]["set"]


def test_pointing_at_a_running_stack_drops_another_stacks_service_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2")  # a stale stack's process
    server.use_endpoint("http://127.0.0.1:3")
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:3"
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ
