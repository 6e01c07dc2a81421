"""Capacity and cost of a deployed stack for a load of students (``irtcat capacity``).

The load is ``students`` answering at once, one item every ``seconds_per_item``: answers/s
lambda = students / seconds_per_item. Every per-answer figure comes from the profile
(``profile.json``, written by ``./dev bench --only capacity`` from a local run: AWS calls per
answer by operation, Lambda invocations per answer by function, the sizes AWS bills by), and
every quota and price from ``aws_prices.json``, which names its source and date for each.

* Pipe lanes (shards x PipeParallelization): a lane runs one batch at a time and a batch's
  sessions run side by side, so a lane takes a batch every ``cycle`` seconds (enrichment plus the
  single-answer chain) and carries at most ``batch_size / cycle`` answers/s; lanes are sized for
  ``utilisation`` of that (queueing: a lane run near 100% makes answers wait).
* Executions/s: a lane that finds records waiting starts the next batch at once, so
  executions/s = min(lambda, lanes / cycle), and at least lambda / batch_size.
* Lambda concurrency per function (Little's law): invocations/s x duration.
* DynamoDB units: writes as the local run measured them (:func:`write_units`: every write at its
  own size, the larger of the item before and after, index copies included, transactions
  doubled); a read of an item of S bytes costs ceil(S / 4 KB) read units, half that when
  eventually consistent (DynamoDB Developer Guide, "Read/write capacity mode").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# the tablet's own calls, which the local run makes without the API (see profile.json):
# POST /sessions/{id}/answers per answer put, GET /sessions/{id} per poll, POST /sessions per test
API_FUNCTIONS = ("PublishAnswerFunction", "GetSessionFunction", "StartSessionFunction")
# the functions the answer state machine (statemachines/answer.asl.json) runs per answer, in the
# order its definition names them; a test holds this to the definition and the template
ANSWER_CHAIN = ("UpdateThetaFunction", "CheckEndConditionFunction", "SelectNextItemFunction",
                "FinishSessionFunction", "CommitStepFunction", "RecordOutcomeFunction")


def handler_folder(logical_id: str) -> str:
    """A function's folder under functions/: ``UpdateThetaFunction`` -> ``update_theta``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()


@dataclass(frozen=True)
class Price:
    value: float
    per: float
    unit: str
    checked: str  # "aws_page" or "secondary"
    source: str

    @property
    def each(self) -> float:
        return self.value / self.per


@dataclass(frozen=True)
class PriceTable:
    region: str
    read: str
    prices: dict[str, Price]
    quotas: dict[str, float]
    sources: dict[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The shipped table (us-east-1) or one of the same shape at ``path``."""
        raw = _read(path, "aws_prices.json")
        try:
            prices = {k: Price(float(v["value"]), float(v["per"]), str(v["unit"]), str(v["checked"]), str(v["source"]))
                      for k, v in raw["prices"].items()}
            quotas = {k: float(v["value"]) for k, v in raw["quotas"].items()}
            sources = {k: str(v["source"]) for k, v in raw["quotas"].items()}
            table = cls(str(raw["region"]), str(raw["read"]), prices, quotas, sources)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"price table {path or 'aws_prices.json'}: {type(exc).__name__}: {exc}") from None
        missing = sorted(set(PRICE_KEYS) - set(prices)) + sorted(set(QUOTA_KEYS) - set(quotas))
        if missing:
            raise ValueError(f"price table {path or 'aws_prices.json'} lacks {', '.join(missing)}")
        return table


PRICE_KEYS = ("lambda_request", "lambda_gb_second", "express_request", "express_gb_hour", "http_api_request",
              "dynamodb_write_request_unit", "dynamodb_read_request_unit", "kinesis_shard_hour",
              "kinesis_put_payload_unit", "pipes_request", "firehose_gb")
QUOTA_KEYS = ("kinesis_shard_records_per_second", "kinesis_shard_write_bytes_per_second", "pipe_parallelization_max",
              "lambda_concurrency_default", "firehose_records_per_second", "firehose_requests_per_second",
              "firehose_bytes_per_second", "dynamodb_table_request_units_per_second")


@dataclass(frozen=True)
class Profile:
    """What one answer costs, measured on a local run (``measured``), and the figures a local
    run cannot measure (``assumed``: AWS's latencies), each stated in profile.json."""

    measured: dict[str, Any]
    assumed: dict[str, float]
    provenance: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Profile:
        raw = _read(path, "profile.json")
        try:
            return cls(dict(raw["measured"]), {k: float(v["value"]) for k, v in raw["assumed"].items()},
                       dict(raw.get("provenance", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"profile {path or 'profile.json'}: {type(exc).__name__}: {exc}") from None

    def calls(self, prefix: str) -> dict[str, float]:
        """Per-answer calls whose key starts with ``prefix`` (e.g. ``dynamodb:``), by operation."""
        return {k.split(":", 1)[1]: float(v) for k, v in self.measured["calls_per_answer"].items()
                if k.startswith(prefix)}

    def invocations(self) -> dict[str, float]:
        """Lambda invocations per answer by function (logical name), the tablet's API calls included."""
        out: dict[str, float] = {}
        for name, n in self.calls("lambda:").items():
            short = name.rsplit("-", 1)[-1]
            out[short] = out.get(short, 0.0) + n
        m = self.measured
        out["PublishAnswerFunction"] = float(self.calls("kinesis:").get("PutRecord", 1.0))
        out["GetSessionFunction"] = float(m["polls_per_answer"])
        out["StartSessionFunction"] = 1.0 / float(m["mean_test_length"])
        return out


@dataclass(frozen=True)
class Knobs:
    """The template's parameters the plan sets or assumes (template.yaml)."""

    batch_size: int = 10  # PipeBatchSize
    utilisation: float = 0.5  # the share of a lane's capacity the plan fills
    function_memory_mb: int = 512  # Globals.Function.MemorySize


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it (Developer Guide, "Item sizes and formats"): the
    UTF-8 bytes of each attribute name plus its value; a number about one byte per two
    significant digits plus one; a list or map 3 bytes plus its elements (1 byte each more);
    booleans and nulls 1 byte. ``item`` is in the low-level wire format ({"S": ...})."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index as DynamoDB bills its writes: its key attributes and what it
    projects (``ALL``, ``KEYS_ONLY`` or ``INCLUDE`` with ``include``)."""

    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"
    include: tuple[str, ...] = ()

    def entry(self, item: dict[str, Any], table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The index's copy of ``item`` (None when the item lacks the index keys: not indexed)."""
        if any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = {*table_keys, *self.keys, *(self.include if self.projection == "INCLUDE" else ())}
        return {k: v for k, v in item.items() if k in names}


# DynamoDB Developer Guide, "Provisioned throughput considerations for global secondary indexes":
# an index entry's size is its attributes plus 100 bytes of overhead
INDEX_ENTRY_OVERHEAD = 100


def write_units(old: dict[str, Any] | None, new: dict[str, Any], indexes: tuple[IndexSpec, ...] = (),
                table_keys: tuple[str, ...] = ("pk", "sk"), transactional: bool = False) -> tuple[int, int]:
    """The write units one put of ``new`` over ``old`` costs: (table, indexes).

    Table: ceil(max(old, new) / 1 KB), doubled in a transaction (Developer Guide, "Read/write
    capacity mode": a put that replaces an item is billed at the larger of the two). Each index:
    nothing when the write changes neither its keys nor what it projects; a put of the new entry
    (ceil((entry + 100 B) / 1 KB)) when it does, and a delete of the old entry as well when its
    keys changed.
    """
    size = max(dynamodb_item_bytes(new), dynamodb_item_bytes(old) if old else 0)
    table = math.ceil(size / 1024) * (2 if transactional else 1)
    index = 0
    for spec in indexes:
        before = spec.entry(old, table_keys) if old else None
        after = spec.entry(new, table_keys)
        if before == after:
            continue
        if after is not None:
            index += math.ceil((dynamodb_item_bytes(after) + INDEX_ENTRY_OVERHEAD) / 1024)
        if before is not None and any(before[k] != (after or {}).get(k) for k in spec.keys):
            index += math.ceil((dynamodb_item_bytes(before) + INDEX_ENTRY_OVERHEAD) / 1024)
    return table, index


def _read(path: Path | None, shipped: str) -> Any:
    """A JSON table: ``path``, or the one shipped beside this module; ValueError with the reason
    when it cannot be read."""
    try:
        text = (path.read_text(encoding="utf-8") if path is not None
                else resources.files(__package__).joinpath(shipped).read_text(encoding="utf-8"))
        return json.loads(text)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path or shipped} is not JSON ({exc.msg}, line {exc.lineno})") from None


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v) if isinstance(v, bytes | bytearray) else math.ceil(len(str(v)) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(x) for k, x in v.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: x}) for x in v)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def plan(students: int, seconds_per_item: float, profile: Profile, table: PriceTable,
         knobs: Knobs = Knobs()) -> dict[str, Any]:
    """Shards, lanes, concurrency, throughput and cost for ``students`` answering at once."""
    if students < 1 or seconds_per_item <= 0:
        raise ValueError("need students >= 1 and seconds_per_item > 0")
    if not 0 < knobs.utilisation <= 1 or knobs.batch_size < 1:
        raise ValueError("need 0 < utilisation <= 1 and batch_size >= 1")
    m, a, q, p = profile.measured, profile.assumed, table.quotas, table.prices
    rate = students / seconds_per_item  # answers/s
    invocations = profile.invocations()
    ddb, kinesis = profile.calls("dynamodb:"), profile.calls("kinesis:")
    api_calls = sum(n for f, n in invocations.items() if f in API_FUNCTIONS)
    # a Lambda's duration: its CPU on the local core, scaled to its share of a vCPU (1,769 MB is
    # one vCPU: Lambda developer guide, "Memory and computing power"), plus its AWS calls
    cpu_scale = 1769 / knobs.function_memory_mb
    aws_calls = (sum(ddb.values()) - ddb.get("GetRecords", 0.0) - ddb.get("GetShardIterator", 0.0)
                 + sum(profile.calls("firehose:").values()) + sum(profile.calls("s3:").values())
                 + invocations["PublishAnswerFunction"] * 2)  # the door's read and the put
    per_invocation_io_ms = aws_calls / sum(invocations.values()) * a["aws_call_ms"]
    handler_ms: dict[str, float] = m.get("handler_cpu_ms", {})
    duration_ms = {f: a["invoke_overhead_ms"] + handler_ms.get(f, a["handler_cpu_ms_default"]) * cpu_scale
                   + per_invocation_io_ms for f in invocations}
    chain_s = sum(invocations[f] * (duration_ms[f] + a["task_transition_ms"])
                  for f in ANSWER_CHAIN if f in invocations) / 1000
    enrich_ms = duration_ms.get("ScreenBatchFunction", a["invoke_overhead_ms"] + per_invocation_io_ms)
    cycle_s = chain_s + (enrich_ms + a["task_transition_ms"]) / 1000
    lane_capacity = knobs.batch_size / cycle_s
    lanes = max(1, math.ceil(rate / (knobs.utilisation * lane_capacity)))
    puts_per_s = rate * kinesis.get("PutRecord", 1.0)
    shards = max(math.ceil(puts_per_s / q["kinesis_shard_records_per_second"]),
                 math.ceil(puts_per_s * m["answer_record_bytes"] / q["kinesis_shard_write_bytes_per_second"]),
                 math.ceil(lanes / q["pipe_parallelization_max"]), 1)
    parallelization = min(int(q["pipe_parallelization_max"]), math.ceil(lanes / shards))
    executions_per_s = max(rate / knobs.batch_size, min(rate, shards * parallelization / cycle_s))
    concurrency = {f: rate * n * duration_ms[f] / 1000 for f, n in invocations.items()}
    # reads are billed by the item's size when read (the mean over the test), in 4 KB units, a
    # strongly consistent read one unit and an eventually consistent one half (Developer Guide,
    # "Read/write capacity mode"); the tablets' polls are eventually consistent when the profile
    # says so, every other read strongly consistent
    read_units = math.ceil(float(m["session_item_bytes_read"]) / 4096)
    polls = float(m["polls_per_answer"])
    strong_reads = (ddb.get("GetItem", 0.0) - polls + ddb.get("Query", 0.0) + ddb.get("BatchGetItem", 0.0)
                    + invocations["PublishAnswerFunction"])  # + the door's read
    poll_factor = 0.5 if m.get("poll_read") == "eventual" else 1.0
    rru_per_answer = (strong_reads + polls * poll_factor) * read_units
    # writes as measured: each priced at its own size, index copies and transactions included
    wru_per_answer = float(m["write_units_per_answer"])
    history_per_answer = float(m["history_records_per_answer"])
    firehose_records_s = rate * history_per_answer
    firehose_requests_s = rate * profile.calls("firehose:").get("PutRecordBatch", 0.0)
    firehose_bytes_s = firehose_records_s * float(m["history_record_bytes"])
    billed_history_gb = history_per_answer * math.ceil(float(m["history_record_bytes"]) / 5120) * 5120 / 1024**3
    gb = knobs.function_memory_mb / 1024
    express_billed_s = math.ceil(cycle_s * 10) / 10
    per_answer = {
        "lambda": sum(invocations.values()) * p["lambda_request"].each
        + sum(n * duration_ms[f] / 1000 * gb for f, n in invocations.items()) * p["lambda_gb_second"].each,
        "step_functions_express": executions_per_s / rate * (
            p["express_request"].each + express_billed_s * (64 / 1024) / 3600 * p["express_gb_hour"].each),
        "api_gateway": api_calls * p["http_api_request"].each,
        "dynamodb": rru_per_answer * p["dynamodb_read_request_unit"].each
        + wru_per_answer * p["dynamodb_write_request_unit"].each,
        "kinesis": shards * p["kinesis_shard_hour"].each / (rate * 3600)
        + kinesis.get("PutRecord", 1.0) * math.ceil(m["answer_record_bytes"] / 25600)
        * p["kinesis_put_payload_unit"].each,
        "pipes": kinesis.get("PutRecord", 1.0) * p["pipes_request"].each,
        "firehose": billed_history_gb * p["firehose_gb"].each,
    }
    total = sum(per_answer.values())
    items = float(m["mean_test_length"])
    warnings = []
    if sum(concurrency.values()) > q["lambda_concurrency_default"]:
        warnings.append(f"Lambda concurrency {sum(concurrency.values()):.0f} exceeds the default Regional quota "
                        f"of {q['lambda_concurrency_default']:.0f}: request an increase")
    for units, value in (("read", rate * rru_per_answer), ("write", rate * wru_per_answer)):
        if value > q["dynamodb_table_request_units_per_second"]:
            warnings.append(f"DynamoDB {value:,.0f} {units} units/s exceed the table's default "
                            f"{q['dynamodb_table_request_units_per_second']:,.0f}: request an increase")
    for what, value, quota in (("records/s", firehose_records_s, "firehose_records_per_second"),
                               ("requests/s", firehose_requests_s, "firehose_requests_per_second"),
                               ("bytes/s", firehose_bytes_s, "firehose_bytes_per_second")):
        if value > q[quota]:
            warnings.append(f"Firehose {what} {value:,.0f} exceed the default {q[quota]:,.0f} of one stream: "
                            "request an increase")
    return {
        "students": students,
        "seconds_per_item": seconds_per_item,
        "answers_per_second": rate,
        "cycle_seconds": cycle_s,
        "lanes": lanes,
        "StreamShardCount": shards,
        "PipeParallelization": parallelization,
        "PipeBatchSize": knobs.batch_size,
        "answers_per_execution": rate / executions_per_s,
        "express_executions_per_second": executions_per_s,
        "lambda_concurrency": {f: round(c, 1) for f, c in sorted(concurrency.items())},
        "lambda_concurrency_total": sum(concurrency.values()),
        "dynamodb_read_units_per_second": rate * rru_per_answer,
        "dynamodb_write_units_per_second": rate * wru_per_answer,
        "firehose_records_per_second": firehose_records_s,
        "firehose_requests_per_second": firehose_requests_s,
        "firehose_megabytes_per_second": firehose_bytes_s / 1e6,
        "api_requests_per_second": rate * api_calls,
        "usd_per_1000_answers": 1000 * total,
        "usd_per_1000_answers_by_service": {k: 1000 * v for k, v in per_answer.items()},
        "usd_per_student_test": total * items,
        "items_per_test": items,
        "warnings": warnings,
    }
