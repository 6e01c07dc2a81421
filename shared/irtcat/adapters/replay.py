"""Operator tools for what the pipeline parked: rejected events (S3 ``quarantine/``) and batches
that failed past the Pipe's retries (the Pipe's SQS dead-letter queue). Listing changes nothing
(a dead-lettered message is visible again as soon as it was read); every id it shows (the S3
key, the SQS message id) selects that item for a replay. Replaying puts the raw events back on
the stream (in their original order, keyed by session) and removes what was replayed; an item
that cannot be replayed is reported with its reason and the rest go on. The answer path is
idempotent, so a replay never double-applies, and replaying twice changes nothing."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .aws import client


@dataclass(frozen=True)
class Parked:
    """One parked thing: a quarantined event or a dead-lettered batch."""

    source: str  # "quarantine" | "dlq"
    id: str  # S3 key or SQS message id: stable, what an operator passes to replay --id
    reason: str
    records: list[bytes]
    when: str = ""

    def summary(self) -> dict[str, Any]:
        preview = self.records[0][:120].decode("utf-8", "replace") if self.records else ""
        return {"source": self.source, "id": self.id, "reason": self.reason, "records": len(self.records),
                "when": self.when, "first": preview}


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did: records put back, items removed, and the items it could not replay."""

    sent: int
    replayed: list[str]
    failed: dict[str, str]  # id -> reason


def list_quarantine(bucket: str) -> list[Parked]:
    s3 = client("s3")
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="quarantine/"):
        for obj in page.get("Contents", []):
            try:
                doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                out.append(Parked("quarantine", obj["Key"], str(doc.get("reason", "")),
                                  [str(doc.get("raw", "")).encode()], str(doc.get("quarantined_at", ""))))
            except (ValueError, AttributeError, RecursionError) as exc:
                out.append(Parked("quarantine", obj["Key"], f"unreadable quarantine object: {type(exc).__name__}", []))
    return out


def _receive_all(queue_url: str, max_messages: int) -> list[dict[str, Any]]:
    """Every message of the queue (up to ``max_messages``), each once; they stay invisible until
    :func:`_release` or their deletion."""
    sqs = client("sqs")
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < max_messages:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                   WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            break
        for m in messages:
            seen.setdefault(m["MessageId"], m)
    return list(seen.values())


def _release(queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make messages visible again at once (a listing must not hide them from a replay)."""
    sqs = client("sqs")
    for m in messages:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)


def _parked_message(m: dict[str, Any]) -> Parked:
    """A dead-lettered message as a parked item; a body that cannot be read is still listed,
    with the reason, so that it can be seen (and its replay reported as impossible)."""
    try:
        body = json.loads(m["Body"])
        records = [base64.b64decode(r["data"]) for r in body.get("records", []) if "data" in r]
        ctx = body.get("context", {})
        return Parked("dlq", m["MessageId"], str(ctx.get("failure", ""))[:300], records,
                      str(ctx.get("dead_lettered_at", "")))
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        return Parked("dlq", m["MessageId"], f"unreadable dead-letter message: {type(exc).__name__}", [])


def list_dlq(queue_url: str, max_messages: int = 1000) -> list[Parked]:
    """The dead-letter queue's messages, read and made visible again at once."""
    messages = _receive_all(queue_url, max_messages)
    _release(queue_url, messages)
    return [_parked_message(m) for m in messages]


# Kinesis partition keys are at most 256 characters
MAX_PARTITION_KEY = 256
# and a record's data at most 1 MiB
MAX_RECORD_BYTES = 1024 * 1024


def _partition_key(raw: bytes) -> str:
    """The session id a record names (so a replay keeps the session's order on one shard), cut to
    Kinesis' 256 characters; ``replay`` for a record that names none."""
    try:
        doc = json.loads(raw)
        key = doc.get("session_id") if isinstance(doc, dict) else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        key = None
    return str(key)[:MAX_PARTITION_KEY] if key else "replay"


def replay(parked: list[Parked], stream: str, bucket: str | None = None,
           queue_url: str | None = None) -> ReplayReport:
    """Put the parked records back on ``stream``, then remove them from where they were parked.
    An item that cannot be put back (no records, a record over 1 MiB, a failed put) stays where
    it is and is reported with its reason; the others go on."""
    kinesis = client("kinesis")
    handles = {}
    if queue_url and any(p.source == "dlq" for p in parked):
        messages = _receive_all(queue_url, 10_000)  # fresh receipt handles to delete with
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        wanted = {p.id for p in parked if p.source == "dlq"}
        _release(queue_url, [m for m in messages if m["MessageId"] not in wanted])
    sent, replayed, failed = 0, [], {}
    for p in parked:
        problem = None
        if not p.records:
            problem = p.reason if p.reason.startswith("unreadable") else "no records to replay"
        elif any(len(raw) > MAX_RECORD_BYTES for raw in p.records):
            problem = "a record is larger than Kinesis' 1 MiB"
        elif p.source == "dlq" and queue_url and p.id not in handles:
            problem = "no longer in the dead-letter queue (replayed or expired)"
        if problem is None:
            try:
                for raw in p.records:
                    kinesis.put_record(StreamName=stream, Data=raw, PartitionKey=_partition_key(raw))
                    sent += 1
            except Exception as exc:  # any put that fails leaves the item parked, with why
                problem = f"put failed: {type(exc).__name__}: {exc}"[:300]
        if problem is not None:
            failed[p.id] = problem
            if p.source == "dlq" and p.id in handles and queue_url:
                _release(queue_url, [{"ReceiptHandle": handles[p.id]}])
            continue
        if p.source == "quarantine" and bucket:
            client("s3").delete_object(Bucket=bucket, Key=p.id)
        elif p.source == "dlq" and queue_url:
            client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=handles[p.id])
        replayed.append(p.id)
    return ReplayReport(sent, replayed, failed)
