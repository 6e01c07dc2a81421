"""What a local run's writes to the state table cost and carry, read back from the table and its
stream (the demo's summary and the capacity profile): item sizes as DynamoDB counts them, write
units write by write, and the history records the session writes' outboxes carried."""

from __future__ import annotations

from typing import Any

import boto3

from ..capacity.model import dynamodb_item_bytes
from ..emulator.runtime import LocalRuntime
from ..emulator.template import REGION


def mean_session_item_bytes(table: str) -> float | None:
    """The mean size of the session items, as DynamoDB counts it (read and write units)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    sizes = [dynamodb_item_bytes(item) for page in ddb.get_paginator("scan").paginate(TableName=table)
             for item in page["Items"] if item["pk"]["S"].startswith("SESSION#")]
    return sum(sizes) / len(sizes) if sizes else None


def table_writes(table: str) -> dict[str, float]:
    """What the run's writes to the table cost, replayed from its stream (every write's new
    image, in order per item) and priced by :func:`~irtcat.capacity.model.write_units` with the
    table's indexes as deployed: table and index write units in all, and per session commit
    (the writes of an item that already existed). Transactions are known by their shape: a
    session's first write (with its pointer), the pointer, the student profile, and the commit
    that finishes a session (with the profile)."""
    from ..capacity.model import IndexSpec, write_units

    ddb = boto3.client("dynamodb", region_name=REGION)
    described = ddb.describe_table(TableName=table)["Table"]
    indexes = tuple(IndexSpec(g["IndexName"], tuple(k["AttributeName"] for k in g["KeySchema"]),
                              g["Projection"]["ProjectionType"], tuple(g["Projection"].get("NonKeyAttributes", [])))
                    for g in described.get("GlobalSecondaryIndexes", []))
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = described["LatestStreamArn"]
    last: dict[tuple[str, str], dict[str, Any]] = {}
    totals = {"table_units": 0.0, "index_units": 0.0, "commits": 0.0, "commit_units": 0.0, "commit_index_units": 0.0,
              "session_item_bytes_max": 0.0, "session_writes": 0.0, "session_bytes_written": 0.0}
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in page.get("Records", []):
                new = record["dynamodb"].get("NewImage")
                if not new:
                    continue
                key = (new["pk"]["S"], new["sk"]["S"])
                old = last.get(key)
                session = key[0].startswith("SESSION#")
                finishing = session and old is not None and old.get("status") != new.get("status") \
                    and new.get("status", {}).get("S") == "finished"
                transactional = not session or old is None or finishing
                table_units, index_units = write_units(old, new, indexes, transactional=transactional)
                totals["table_units"] += table_units
                totals["index_units"] += index_units
                if session and old is not None:
                    totals["commits"] += 1
                    totals["commit_units"] += table_units
                    totals["commit_index_units"] += index_units
                if session:
                    size = float(dynamodb_item_bytes(new))
                    totals["session_item_bytes_max"] = max(totals["session_item_bytes_max"], size)
                    totals["session_writes"] += 1
                    totals["session_bytes_written"] += size
                last[key] = new
            iterator = page.get("NextShardIterator") if page.get("Records") else None
    return totals


def write_units_per_answer(table: str, answers: int) -> dict[str, float | None]:
    """:func:`table_writes` per answer (for ``irtcat capacity``) and per session commit."""
    w = table_writes(table)
    commits = w["commits"] or float("nan")
    return {
        "write_units_per_answer": (w["table_units"] + w["index_units"]) / answers if answers else None,
        "index_write_units_per_answer": w["index_units"] / answers if answers else None,
        "commit_write_units": (w["commit_units"] + w["commit_index_units"]) / commits if w["commits"] else None,
        "commit_index_write_units": w["commit_index_units"] / commits if w["commits"] else None,
        "session_item_bytes_max": w["session_item_bytes_max"],
        # the item as a read during the test finds it, on average (what a read is billed by)
        "session_item_bytes_read": (w["session_bytes_written"] / w["session_writes"]
                                    if w["session_writes"] else None),
    }


def outbox_event_ids(rt: LocalRuntime) -> set[str]:
    """The event_id digests (:func:`~irtcat.domain.session.event_digest`) of every history
    record the table's stream carries in a session write's outbox (read from the start of the
    stream)."""
    from ..adapters.aws import outbox_of
    from ..domain.session import event_digest
    from ..domain.stored import unpack_outbox

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    ids: set[str] = set()
    for mapping in rt.stack.stream_mappings:
        shards = streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = streams.get_shard_iterator(StreamArn=mapping.stream_arn, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                reply = streams.get_records(ShardIterator=iterator, Limit=1000)
                if not reply["Records"]:
                    break
                for record in reply["Records"]:
                    outbox = outbox_of(record["dynamodb"].get("NewImage", {}))
                    if outbox is not None:
                        ids.update(event_digest(r.event_id) for r in unpack_outbox(*outbox) if r.event_id)
                iterator = reply.get("NextShardIterator")
    return ids
