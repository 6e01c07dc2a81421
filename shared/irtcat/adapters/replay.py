"""Operator tools for what the pipeline parked: rejected events (S3 ``quarantine/``) and batches
that failed past the Pipe's retries (the Pipe's SQS dead-letter queue). Listing changes nothing;
replaying puts the raw events back on the stream (in their original order, keyed by session) and
removes what was replayed. The answer path is idempotent, so a replay never double-applies."""

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
    id: str  # S3 key or SQS receipt handle
    reason: str
    records: list[bytes]
    when: str = ""

    def summary(self) -> dict[str, Any]:
        preview = self.records[0][:120].decode("utf-8", "replace") if self.records else ""
        return {"source": self.source, "id": self.id if self.source == "quarantine" else self.id[:24] + "...",
                "reason": self.reason, "records": len(self.records), "when": self.when, "first": preview}


def list_quarantine(bucket: str) -> list[Parked]:
    s3 = client("s3")
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="quarantine/"):
        for obj in page.get("Contents", []):
            doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            out.append(Parked("quarantine", obj["Key"], doc.get("reason", ""), [doc.get("raw", "").encode()],
                              doc.get("quarantined_at", "")))
    return out


def list_dlq(queue_url: str, max_messages: int = 100) -> list[Parked]:
    """Peek at the dead-letter queue (messages become visible again after a short timeout)."""
    sqs = client("sqs")
    out: list[Parked] = []
    while len(out) < max_messages:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                   WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            break
        for m in messages:
            body = json.loads(m["Body"])
            records = [base64.b64decode(r["data"]) for r in body.get("records", []) if "data" in r]
            ctx = body.get("context", {})
            out.append(Parked("dlq", m["ReceiptHandle"], str(ctx.get("failure", ""))[:300], records,
                              str(ctx.get("dead_lettered_at", ""))))
    return out


def _partition_key(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        key = doc.get("session_id") if isinstance(doc, dict) else None
        return str(key) if key else "replay"
    except (ValueError, UnicodeDecodeError):
        return "replay"


def replay(parked: list[Parked], stream: str, bucket: str | None = None, queue_url: str | None = None) -> int:
    """Put the parked records back on ``stream``, then remove them from where they were parked."""
    kinesis = client("kinesis")
    sent = 0
    for p in parked:
        for raw in p.records:
            kinesis.put_record(StreamName=stream, Data=raw, PartitionKey=_partition_key(raw))
            sent += 1
        if p.source == "quarantine" and bucket:
            client("s3").delete_object(Bucket=bucket, Key=p.id)
        elif p.source == "dlq" and queue_url:
            client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=p.id)
    return sent
