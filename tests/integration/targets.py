"""Where the integration tests run: the embedded local stack (default) or a deployed stack.

Set ``IRTCAT_STACK_NAME`` (with credentials, and ``AWS_ENDPOINT_URL`` for LocalStack) to run the
same tests against a stack deployed with ``sam deploy``; tests that need fault injection are
skipped there with the reason printed.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from irtcat.adapters.aws import DynamoSessions, S3BankStore, Settings
from irtcat.domain.bank import ItemBank
from irtcat.domain.history import HistoryRecord
from irtcat.domain.policy import TestDefinition
from irtcat.domain.session import SessionState

T = TypeVar("T")


class Target:
    """The operations the tests need, on some deployment of template.yaml."""

    local = False
    outputs: dict[str, str]
    functions: dict[str, str]  # logical id -> physical name

    def invoke(self, logical_id: str, event: Any) -> tuple[Any, str | None]:
        raise NotImplementedError

    # ---- common, boto3 only
    def env(self) -> dict[str, str]:
        return {"TABLE_NAME": self.outputs["StateTableName"], "BANK_BUCKET": self.outputs["BankBucketName"],
                "HISTORY_BUCKET": self.outputs["HistoryBucketName"]}

    def api(self, logical_id: str, event: dict[str, Any]) -> tuple[int, Any]:
        payload, error = self.invoke(logical_id, event)
        assert error is None, payload
        return payload["statusCode"], json.loads(payload["body"])

    def settings(self) -> Settings:
        return Settings(self.outputs["StateTableName"], self.outputs["BankBucketName"], "-",
                        self.outputs["HistoryBucketName"])

    def load(self, bank: ItemBank, test: TestDefinition) -> None:
        """Publish the bank and the test (its policy as a published version), as
        ``irtcat bank publish`` does."""
        store = S3BankStore(self.settings())
        store.publish(bank)
        store.put_test(test)

    def publish(self, data: bytes, partition_key: str) -> None:
        boto3.client("kinesis").put_record(StreamName=self.outputs["AnswerStreamName"], Data=data,
                                           PartitionKey=partition_key)

    def session(self, session_id: str) -> SessionState:
        item = boto3.client("dynamodb").get_item(
            TableName=self.outputs["StateTableName"], ConsistentRead=True,
            Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "STATE"}})["Item"]
        return DynamoSessions(self.settings(), S3BankStore(self.settings())).state_of(item)

    def history(self) -> list[HistoryRecord]:
        s3 = boto3.client("s3")
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.outputs["HistoryBucketName"],
                                                                 Prefix="history/"):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=self.outputs["HistoryBucketName"], Key=obj["Key"])["Body"].read()
                if body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                out += [HistoryRecord.model_validate_json(x) for x in body.decode().splitlines() if x.strip()]
        return out

    def quarantined(self) -> list[dict[str, Any]]:
        s3 = boto3.client("s3")
        bucket = self.outputs["HistoryBucketName"]
        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="quarantine/")
                for o in p.get("Contents", [])]
        return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]

    def wait_for(self, check: Callable[[], T | None], timeout: float = 60.0, what: str = "condition") -> T:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        raise AssertionError(f"timed out waiting for {what}")

    def history_settle_seconds(self) -> float:
        return 0.0


class LocalTarget(Target):
    local = True

    def __init__(self) -> None:
        from irtcat.emulator.runtime import LocalRuntime

        self.rt = LocalRuntime.up(parameters={"StreamShardCount": "2", "PipeBatchSize": "10"})
        self.outputs = {k: str(v) for k, v in self.rt.stack.outputs().items()}
        self.functions = {f.logical_id: f.name for f in self.rt.stack.functions.values()}

    def invoke(self, logical_id: str, event: Any) -> tuple[Any, str | None]:
        res = self.rt.invoke(logical_id, event)
        return res.payload, res.error

    def close(self) -> None:
        self.rt.down()


class AwsTarget(Target):
    def __init__(self, stack_name: str) -> None:
        cfn = boto3.client("cloudformation")
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        self.functions = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources
                          if r["ResourceType"] == "AWS::Lambda::Function"}

    def invoke(self, logical_id: str, event: Any) -> tuple[Any, str | None]:
        resp = boto3.client("lambda").invoke(FunctionName=self.functions[logical_id],
                                             Payload=json.dumps(event).encode())
        return json.loads(resp["Payload"].read()), resp.get("FunctionError")

    def history_settle_seconds(self) -> float:
        return 90.0  # Firehose buffers up to 60 s

    def close(self) -> None:
        pass


def make_target() -> Target:
    stack = os.environ.get("IRTCAT_STACK_NAME")
    return AwsTarget(stack) if stack else LocalTarget()


def stream_records(stream: str) -> list[bytes]:
    """Every record on ``stream``, shard by shard, each shard read from its start."""
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    out: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            out += [r["Data"] for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    return out


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
