"""The local emulator's speed-ups of moto change nothing that a client can see."""

from __future__ import annotations

import json
from typing import Any

import pytest
from irtcat.local import server

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
