"""The emulator answers every operation the stack uses in every wire protocol the locked botocore's
service models list for its service (``metadata.protocols``): when AWS moves a service to another
protocol (Athena went from JSON 1.1 to rest-json in botocore 1.44.18), this fails with the
service's name, not with a 404 deep inside a deploy. Plain moto must still fail Athena's rest-json
here: that is the bug ``rest_protocol_routes`` fixes (docs/moto.md)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/r"
MACHINE = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
TABLE = {"TableName": "t", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "BillingMode": "PAY_PER_REQUEST",
         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
KEY = {"pk": {"S": "a"}}

# Every AWS operation the stack (handlers, emulator deploy, local runtime, demo) makes, per service,
# in an order where each finds what it needs; values that depend on earlier answers are callables.
Call = tuple[str, Any]
STACK_OPERATIONS: dict[str, list[Call]] = {
    "dynamodb": [("CreateTable", TABLE), ("UpdateTimeToLive", {"TableName": "t", "TimeToLiveSpecification":
                                                                {"Enabled": True, "AttributeName": "ttl"}}),
                 ("DescribeTable", {"TableName": "t"}), ("PutItem", {"TableName": "t", "Item": KEY}),
                 ("GetItem", {"TableName": "t", "Key": KEY, "ConsistentRead": True}),
                 ("UpdateItem", {"TableName": "t", "Key": KEY, "UpdateExpression": "SET v = :v",
                                 "ExpressionAttributeValues": {":v": {"N": "1"}}}),
                 ("Query", {"TableName": "t", "KeyConditionExpression": "pk = :p",
                            "ExpressionAttributeValues": {":p": {"S": "a"}}}),
                 ("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}}]}),
                 ("DeleteItem", {"TableName": "t", "Key": KEY})],
    "dynamodbstreams": [("ListStreams", {}),
                        ("DescribeStream", lambda c, seen: {
                            "StreamArn": seen["ListStreams"]["Streams"][0]["StreamArn"]}),
                        ("GetShardIterator", lambda c, seen: {
                            "StreamArn": seen["ListStreams"]["Streams"][0]["StreamArn"],
                            "ShardId": seen["DescribeStream"]["StreamDescription"]["Shards"][0]["ShardId"],
                            "ShardIteratorType": "TRIM_HORIZON"}),
                        ("GetRecords", lambda c, seen: {"ShardIterator": seen["GetShardIterator"]["ShardIterator"]})],
    "kinesis": [("CreateStream", {"StreamName": "s", "ShardCount": 1}),
                ("StartStreamEncryption", {"StreamName": "s", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}),
                ("DescribeStream", {"StreamName": "s"}), ("ListShards", {"StreamName": "s"}),
                ("PutRecord", {"StreamName": "s", "Data": b"{}", "PartitionKey": "k"}),
                ("GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                      "ShardIteratorType": "TRIM_HORIZON"}),
                ("GetRecords", lambda c, seen: {"ShardIterator": seen["GetShardIterator"]["ShardIterator"]})],
    "s3": [("CreateBucket", {"Bucket": "irtcat-b"}),
           ("PutBucketVersioning", {"Bucket": "irtcat-b", "VersioningConfiguration": {"Status": "Enabled"}}),
           ("PutBucketEncryption", {"Bucket": "irtcat-b", "ServerSideEncryptionConfiguration": {"Rules": [
               {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}),
           ("PutPublicAccessBlock", {"Bucket": "irtcat-b",
                                     "PublicAccessBlockConfiguration": {"BlockPublicAcls": True}}),
           ("PutObject", {"Bucket": "irtcat-b", "Key": "k", "Body": b"x"}),
           ("GetObject", {"Bucket": "irtcat-b", "Key": "k"}),
           ("ListObjectsV2", {"Bucket": "irtcat-b"}), ("DeleteObject", {"Bucket": "irtcat-b", "Key": "k"})],
    "sqs": [("CreateQueue", {"QueueName": "q"}), ("GetQueueUrl", {"QueueName": "q"}),
            ("SendMessage", lambda c, seen: {"QueueUrl": seen["CreateQueue"]["QueueUrl"], "MessageBody": "m"}),
            ("ReceiveMessage", lambda c, seen: {"QueueUrl": seen["CreateQueue"]["QueueUrl"]}),
            ("DeleteMessage", lambda c, seen: {
                "QueueUrl": seen["CreateQueue"]["QueueUrl"],
                "ReceiptHandle": seen["ReceiveMessage"]["Messages"][0]["ReceiptHandle"]})],
    "firehose": [("CreateDeliveryStream", {"DeliveryStreamName": "f", "ExtendedS3DestinationConfiguration": {
                     "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::irtcat-b"}}),
                 ("PutRecordBatch", {"DeliveryStreamName": "f", "Records": [{"Data": b"{}"}]})],
    "stepfunctions": [("CreateStateMachine", {"name": "m", "definition": MACHINE, "roleArn": ROLE,
                                              "type": "STANDARD"}),
                      ("DescribeStateMachine", lambda c, seen: {
                          "stateMachineArn": seen["CreateStateMachine"]["stateMachineArn"]}),
                      ("StartExecution", lambda c, seen: {
                          "stateMachineArn": seen["CreateStateMachine"]["stateMachineArn"]}),
                      ("DescribeExecution", lambda c, seen: {"executionArn": seen["StartExecution"]["executionArn"]})],
    "glue": [("CreateDatabase", {"DatabaseInput": {"Name": "d"}}),
             ("CreateTable", {"DatabaseName": "d", "TableInput": {"Name": "h"}})],
    "athena": [("CreateWorkGroup", {"Name": "w", "Configuration": {"ResultConfiguration": {"OutputLocation": "s3://irtcat-b/a/"}}}),
               ("GetWorkGroup", {"WorkGroup": "w"}),
               ("CreateNamedQuery", {"Name": "q", "Database": "d", "QueryString": "SELECT 1", "WorkGroup": "w"}),
               ("ListNamedQueries", {"WorkGroup": "w", "MaxResults": 10}),
               ("GetNamedQuery", lambda c, seen: {"NamedQueryId": seen["CreateNamedQuery"]["NamedQueryId"]})],
    "cognito-idp": [("CreateUserPool", {"PoolName": "p"}),
                    ("CreateUserPoolClient", lambda c, seen: {"UserPoolId": seen["CreateUserPool"]["UserPool"]["Id"],
                                                              "ClientName": "c",
                                                              "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}),
                    ("CreateGroup", lambda c, seen: {"UserPoolId": seen["CreateUserPool"]["UserPool"]["Id"],
                                                     "GroupName": "g"}),
                    ("AdminCreateUser", lambda c, seen: {"UserPoolId": seen["CreateUserPool"]["UserPool"]["Id"],
                                                         "Username": "u"}),
                    ("AdminSetUserPassword", lambda c, seen: {"UserPoolId": seen["CreateUserPool"]["UserPool"]["Id"],
                                                              "Username": "u", "Password": "Pass-word-1",
                                                              "Permanent": True}),
                    ("AdminAddUserToGroup", lambda c, seen: {"UserPoolId": seen["CreateUserPool"]["UserPool"]["Id"],
                                                             "Username": "u", "GroupName": "g"}),
                    ("InitiateAuth", lambda c, seen: {
                        "ClientId": seen["CreateUserPoolClient"]["UserPoolClient"]["ClientId"],
                        "AuthFlow": "USER_PASSWORD_AUTH",
                        "AuthParameters": {"USERNAME": "u", "PASSWORD": "Pass-word-1"}})],
    "logs": [("CreateLogGroup", {"logGroupName": "/g"}),
             ("PutRetentionPolicy", {"logGroupName": "/g", "retentionInDays": 7})],
}
# what another service must hold first
SETUP: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "dynamodbstreams": [("dynamodb", "CreateTable", TABLE), ("dynamodb", "PutItem", {"TableName": "t", "Item": KEY})],
    "firehose": [("s3", "CreateBucket", {"Bucket": "irtcat-b"})],
}
# CloudFormation resource types of template.yaml -> the service whose API the local stack calls for them
TEMPLATE_SERVICES = {"DynamoDB": "dynamodb", "Kinesis": "kinesis", "S3": "s3", "SQS": "sqs",
                     "KinesisFirehose": "firehose", "StepFunctions": "stepfunctions", "Glue": "glue",
                     "Athena": "athena", "Cognito": "cognito-idp", "Logs": "logs"}

# resource types the local stack makes no AWS call for: SAM's own (expanded before deploy), Lambda
# (the gateway serves Invoke itself), the Pipe and the HTTP API (local stand-ins), and the rest,
# which only a deployed stack has (IAM, alarms, dashboards, keys, topics)
NOT_CALLED_LOCALLY = {"Serverless", "Lambda", "Pipes", "ApiGatewayV2", "IAM", "CloudWatch", "KMS", "SNS", "Events",
                      "Scheduler", "QuickSight"}


def protocols(service: str) -> list[str]:
    """The wire protocols the locked botocore's model lists for ``service``."""
    md = botocore.session.get_session().get_service_model(service).metadata
    return list(md.get("protocols") or [md["protocol"]])


def client_speaking(service: str, protocol: str, endpoint: str, models: Path) -> Any:
    """A client of ``service`` that sends ``protocol``: the locked model with only that protocol."""
    session = botocore.session.get_session()
    model = session.get_service_model(service)
    raw = session.get_component("data_loader").load_service_model(service, "service-2", model.api_version)
    raw = json.loads(json.dumps(raw))
    raw["metadata"].update(protocol=protocol, protocols=[protocol])
    folder = models / protocol / service / model.api_version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "service-2.json").write_text(json.dumps(raw))
    fresh = botocore.session.Session()
    fresh.get_component("data_loader").search_paths.insert(0, str(models / protocol))
    return boto3.Session(botocore_session=fresh, region_name="us-east-1").client(
        service, endpoint_url=endpoint, aws_access_key_id="local", aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def unanswered(service: str, protocol: str, endpoint: str, models: Path) -> list[str]:
    """The stack's operations of ``service`` the endpoint does not answer in ``protocol``."""
    for other, operation, kwargs in SETUP.get(service, ()):
        try:
            client_speaking(other, protocols(other)[0], endpoint, models)._make_api_call(operation, kwargs)
        except ClientError as exc:  # already there (the same service's other protocol made it)
            if "AlreadyExists" not in str(exc) and "ResourceInUse" not in str(exc) and "BucketAlready" not in str(exc):
                raise
    client = client_speaking(service, protocol, endpoint, models)
    seen: dict[str, Any] = {}
    failures = []
    for operation, params in STACK_OPERATIONS[service]:
        try:
            kwargs = params(client, seen) if callable(params) else params
            seen[operation] = client._make_api_call(operation, kwargs)
        except (ClientError, KeyError, IndexError) as exc:
            failures.append(f"{service} {operation} over {protocol}: {type(exc).__name__}: {str(exc)[:200]}")
    return failures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """The local runtime's emulator (moto behind the gateway, every patch applied)."""
    from irtcat.emulator.server import EmulatorServer

    saved = dict(os.environ)
    server = EmulatorServer({}, service_processes=(), state_machines=True)
    server.start()
    yield server.endpoint
    server.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def plain_moto() -> Iterator[str]:
    """moto's own server, unpatched, in a process of its own."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    yield endpoint
    proc.kill()
    proc.wait()


def test_the_table_covers_every_service_of_the_template() -> None:
    types = {t.split("::")[1] for t in re_resource_types((ROOT / "template.yaml").read_text())}
    called = {TEMPLATE_SERVICES[t] for t in types if t in TEMPLATE_SERVICES}
    assert called <= set(STACK_OPERATIONS), f"no operations listed for {sorted(called - set(STACK_OPERATIONS))}"
    unknown = types - set(TEMPLATE_SERVICES) - NOT_CALLED_LOCALLY
    assert not unknown, f"template.yaml uses {sorted(unknown)}: say which API the local stack calls for it"


def re_resource_types(text: str) -> set[str]:
    import re

    return set(re.findall(r"Type: (AWS::\w+::\w+)", text))


@pytest.mark.parametrize("service", sorted(STACK_OPERATIONS))
def test_every_operation_answers_in_every_protocol(service: str, emulator: str, tmp_path: Path) -> None:
    import urllib.request as request

    request.urlopen(request.Request(f"{emulator}/moto-api/reset", method="POST"), timeout=30).read()
    failures = [f for protocol in protocols(service) for f in unanswered(service, protocol, emulator, tmp_path)]
    assert not failures, "\n".join(failures)


def test_plain_moto_does_not_answer_athenas_rest_json(plain_moto: str, tmp_path: Path) -> None:
    """The bug ``rest_protocol_routes`` fixes; when this fails, moto routes Athena's rest-json itself
    and the patch can go."""
    failures = unanswered("athena", "rest-json", plain_moto, tmp_path)
    assert failures and all("404" in f or "Not yet implemented" in f for f in failures[:1]), failures
