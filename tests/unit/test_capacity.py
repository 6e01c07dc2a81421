"""The capacity and cost model (irtcat capacity): its arithmetic on a profile whose figures are
chosen by hand, DynamoDB's item-size rules, and the shipped tables' provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from irtcat.capacity.model import (
    PRICE_KEYS,
    QUOTA_KEYS,
    IndexSpec,
    Knobs,
    PriceTable,
    Profile,
    dynamodb_item_bytes,
    plan,
    write_units,
)
from irtcat.cli.main import main

ASSUMED = {"aws_call_ms": 10.0, "invoke_overhead_ms": 0.0, "task_transition_ms": 20.0,
           "handler_cpu_ms_default": 0.0}


def hand_profile(session_bytes: float = 2000.0, write_units: float = 2.0, poll_read: str = "strong") -> Profile:
    """One answer: four chain functions once each, one enrichment per answer, two GetItems (one
    a poll), one PutItem of ``write_units``, one Kinesis put of 300 bytes, one history record
    of 700 bytes; no AWS call time beyond what ``aws_call_ms`` gives."""
    calls = {"lambda:x-UpdateThetaFunction": 1.0, "lambda:x-CheckEndConditionFunction": 1.0,
             "lambda:x-SelectNextItemFunction": 1.0, "lambda:x-CommitStepFunction": 1.0,
             "lambda:x-ScreenBatchFunction": 1.0, "dynamodb:GetItem": 2.0, "dynamodb:PutItem": 1.0,
             "kinesis:PutRecord": 1.0, "firehose:PutRecordBatch": 0.1}
    return Profile(measured={"calls_per_answer": calls, "polls_per_answer": 1.0, "answer_record_bytes": 300.0,
                             "history_records_per_answer": 1.0, "history_record_bytes": 700.0,
                             "session_item_bytes": session_bytes, "session_item_bytes_read": session_bytes,
                             "write_units_per_answer": write_units, "poll_read": poll_read,
                             "mean_test_length": 20.0, "handler_cpu_ms": {}},
                   assumed=dict(ASSUMED))


def test_plan_follows_the_formulas_on_a_hand_made_profile() -> None:
    table = PriceTable.load()
    profile = hand_profile()
    out = plan(3000, 30.0, profile, table, Knobs(batch_size=10, utilisation=0.5, function_memory_mb=1769))
    assert out["answers_per_second"] == pytest.approx(100.0)
    inv = profile.invocations()
    assert inv["PublishAnswerFunction"] == 1.0 and inv["GetSessionFunction"] == 1.0
    assert inv["StartSessionFunction"] == pytest.approx(1 / 20)
    # AWS calls from Lambdas per answer: 3 DynamoDB + 0.1 Firehose + the door's read and put (2)
    io_ms = 5.1 / sum(inv.values()) * 10.0
    cycle = (4 * (io_ms + 20.0) + (io_ms + 20.0)) / 1000
    assert out["cycle_seconds"] == pytest.approx(cycle)
    lanes = math.ceil(100.0 / (0.5 * 10 / cycle))
    assert out["lanes"] == lanes
    assert out["StreamShardCount"] == max(1, math.ceil(lanes / 10))
    assert out["StreamShardCount"] * out["PipeParallelization"] >= lanes
    # 2 KB items: a read is 1 unit; three reads per answer (two and the door's); writes as measured
    assert out["dynamodb_read_units_per_second"] == pytest.approx(100.0 * 3)
    assert out["dynamodb_write_units_per_second"] == pytest.approx(100.0 * 2)
    assert out["firehose_records_per_second"] == pytest.approx(100.0)
    p = table.prices
    dynamodb = 3 * p["dynamodb_read_request_unit"].each + 2 * p["dynamodb_write_request_unit"].each
    assert out["usd_per_1000_answers_by_service"]["dynamodb"] == pytest.approx(1000 * dynamodb, rel=1e-3)
    firehose = 5120 / 1024**3 * p["firehose_gb"].each  # a 700-byte record is billed as 5 KB
    assert out["usd_per_1000_answers_by_service"]["firehose"] == pytest.approx(1000 * firehose, rel=1e-3)
    assert out["usd_per_student_test"] == pytest.approx(20 * out["usd_per_1000_answers"] / 1000)


def test_load_scales_throughput_not_the_cost_per_answer() -> None:
    table, profile = PriceTable.load(), hand_profile()
    small, big = (plan(n, 30.0, profile, table) for n in (1_000, 100_000))
    assert big["answers_per_second"] == pytest.approx(100 * small["answers_per_second"])
    assert big["lambda_concurrency_total"] == pytest.approx(100 * small["lambda_concurrency_total"])
    assert big["StreamShardCount"] > small["StreamShardCount"]
    # shard-hours are the one fixed cost; at these loads they are a small share
    assert big["usd_per_1000_answers"] <= small["usd_per_1000_answers"]
    assert big["usd_per_1000_answers"] == pytest.approx(small["usd_per_1000_answers"], rel=0.05)


def test_bigger_session_items_cost_more_units_and_a_quota_warning() -> None:
    table = PriceTable.load()
    out = plan(100_000, 10.0, hand_profile(session_bytes=12_000.0, write_units=12.0), table)
    assert out["dynamodb_write_units_per_second"] == pytest.approx(10_000 * 12)
    assert out["dynamodb_read_units_per_second"] == pytest.approx(10_000 * 3 * 3)
    assert any("DynamoDB" in w and "write units/s" in w for w in out["warnings"])
    assert not plan(1_000, 30.0, hand_profile(), table)["warnings"]


def test_eventually_consistent_polls_cost_half_a_unit() -> None:
    table = PriceTable.load()
    strong, eventual = (plan(3000, 30.0, hand_profile(poll_read=r), table) for r in ("strong", "eventual"))
    assert strong["dynamodb_read_units_per_second"] - eventual["dynamodb_read_units_per_second"] == \
        pytest.approx(100.0 * 0.5)


def test_write_units_price_each_write_at_its_own_size_with_index_copies() -> None:
    def item(doc: str, **more: str) -> dict[str, Any]:
        return {"pk": {"S": "SESSION#1"}, "sk": {"S": "STATE"}, "doc": {"S": doc},
                **{k: {"S": v} for k, v in more.items()}}

    keys = {"gsi1pk": "TEST#t", "gsi1sk": "2026#1"}
    everything = (IndexSpec("by_test", ("gsi1pk", "gsi1sk"), "ALL"),)
    keys_only = (IndexSpec("by_test", ("gsi1pk", "gsi1sk"), "KEYS_ONLY"),)
    small, big = item("x" * 500, **keys), item("x" * 2800, **keys)
    # a new item: the table write and the index's copy (plus its 100 bytes of overhead)
    assert write_units(None, small, everything) == (1, 1)
    assert write_units(None, big, everything) == (3, 3)
    # a put over a bigger item is billed at the bigger size; a transaction twice
    assert write_units(big, small, everything) == (3, 1)
    assert write_units(None, small, everything, transactional=True) == (2, 1)
    # an index that projects no changed attribute is not written
    assert write_units(small, big, keys_only) == (3, 0)
    assert write_units(None, big, keys_only) == (3, 1)
    # a changed index key: the old entry deleted, the new one put
    moved = item("x" * 500, gsi1pk="TEST#u", gsi1sk="2026#1")
    assert write_units(small, moved, keys_only) == (1, 2)
    # an item without the index's keys is not in the index
    assert write_units(None, item("x"), everything) == (1, 0)


def test_bad_loads_are_refused() -> None:
    with pytest.raises(ValueError, match="students"):
        plan(0, 30.0, hand_profile(), PriceTable.load())
    with pytest.raises(ValueError, match="utilisation"):
        plan(10, 30.0, hand_profile(), PriceTable.load(), Knobs(utilisation=0.0))


def test_dynamodb_item_size_follows_the_documented_rules() -> None:
    # strings: UTF-8 bytes of name and value; numbers: (significant digits + 1) / 2 + 1
    assert dynamodb_item_bytes({"pk": {"S": "SESSION#abc"}}) == 2 + 11
    assert dynamodb_item_bytes({"n": {"N": "12345"}}) == 1 + 4
    assert dynamodb_item_bytes({"flag": {"BOOL": True}}) == 4 + 1
    assert dynamodb_item_bytes({"é": {"S": "ü"}}) == 2 + 2
    assert dynamodb_item_bytes({"l": {"L": [{"S": "ab"}, {"NULL": True}]}}) == 1 + 3 + (1 + 2) + (1 + 1)
    assert dynamodb_item_bytes({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    with pytest.raises(ValueError, match="unknown DynamoDB type"):
        dynamodb_item_bytes({"x": {"Q": 1}})


def test_shipped_tables_name_a_source_for_every_figure() -> None:
    table = PriceTable.load()
    assert set(PRICE_KEYS) <= set(table.prices) and set(QUOTA_KEYS) <= set(table.quotas)
    for key, price in table.prices.items():
        assert price.checked in ("aws_page", "secondary"), key
        assert "http" in price.source or "as " in price.source, key
        assert price.value > 0
    assert all(table.sources[k] for k in QUOTA_KEYS)
    profile = Profile.load()
    assert {"date", "commit", "command"} <= set(profile.provenance)
    assert profile.measured["calls_per_answer"] and profile.measured["session_item_bytes"] > 0
    # the budget of the session item, as measured: a poll costs half a read unit (eventually
    # consistent, under 4 KB), an answer's commit at most two write units with index and outbox
    m = profile.measured
    assert m["poll_read"] == "eventual" and m["session_item_bytes_read"] <= 4096
    assert m["commit_write_units"] <= 2.0 and m["session_item_bytes_max"] <= 2048
    for name in ASSUMED:
        assert name in profile.assumed


def test_a_price_table_without_a_price_is_refused(tmp_path: Path) -> None:
    raw = json.loads((Path(__file__).parents[2] / "shared/irtcat/capacity/aws_prices.json").read_text())
    del raw["prices"]["firehose_gb"]
    broken = tmp_path / "prices.json"
    broken.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="lacks firehose_gb"):
        PriceTable.load(broken)


def test_cli_prints_the_rows_and_refuses_a_region_without_prices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", "--students", "1000", "10000", "100000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["students"] for r in out["rows"]] == [1000, 10000, 100000]
    assert out["prices_not_checked_on_an_aws_page"]
    assert main(["capacity", "--region", "eu-west-1"]) == 2
    assert "pass --prices" in capsys.readouterr().err
    assert main(["capacity", "--prices", "/nonexistent/prices.json"]) == 2
    assert "cannot read /nonexistent/prices.json" in capsys.readouterr().err
    assert main(["capacity", "--students", "0"]) == 2
    assert "students >= 1" in capsys.readouterr().err


def test_template_has_a_parameter_for_every_knob_the_plan_sets() -> None:
    from irtcat.emulator.template import load_template

    params = load_template(Path(__file__).parents[2] / "template.yaml")["Parameters"]
    row = plan(1000, 30.0, hand_profile(), PriceTable.load())
    for knob in ("StreamShardCount", "PipeParallelization", "PipeBatchSize"):
        assert knob in row and knob in params
    assert "FunctionMemorySize" in params
