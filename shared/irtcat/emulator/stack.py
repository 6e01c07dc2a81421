"""Create every resource of template.yaml in the emulator, from the template itself.

SAM is expanded with aws-sam-translator; each CloudFormation resource the pipeline uses is
created through its real API (boto3 against the emulator). Resources with no local meaning
(IAM, alarms, Lambda permissions, the layer, the API stage) are recorded as such; the Pipe
and the HTTP API are emulated by :mod:`.pipe` and :mod:`.api` from their template properties.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from .event_sources import StreamMapping
from .function import FunctionSpec, Runner
from .inprocess import InProcessFunction
from .template import ACCOUNT, REGION, Resolver, expand_sam, load_template, parameter_defaults

NOT_EMULATED = {
    "AWS::IAM::Role": "IAM is not enforced locally (least privilege is checked on the template)",
    "AWS::Lambda::Permission": "no resource policies locally",
    "AWS::Lambda::LayerVersion": "the layer's package is installed in the local environment",
    "AWS::CloudWatch::Alarm": "no alarms locally",
    "AWS::CloudWatch::Dashboard": "no dashboards locally",
    "AWS::ApiGatewayV2::Stage": "the local API serves the routes directly",
    "AWS::S3::BucketPolicy": "bucket policies are not enforced locally",
    "AWS::SQS::QueuePolicy": "queue policies are not enforced locally",
    "AWS::Logs::LogStream": "log streams are created on first write",
    "AWS::Scheduler::Schedule": "no scheduler locally: `irtcat local calibrate` starts a calibration run",
}


@dataclass
class LocalStack:
    """What was created: physical names, the functions, the pipe and API settings."""

    stack_name: str
    root: Path
    template: dict[str, Any]
    resolver: Resolver
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by physical name
    stream_mappings: list[StreamMapping] = field(default_factory=list)  # run by the runtime
    # how each function runs, by physical name: in this process unless the runtime says otherwise
    runners: dict[str, Runner] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def name(self, logical_id: str) -> str:
        return self.resolver.physical[logical_id]

    def attr(self, logical_id: str, attr: str) -> str:
        return self.resolver.attributes[(logical_id, attr)]

    def resources_of(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def outputs(self) -> dict[str, Any]:
        out = {}
        for key, spec in self.template.get("Outputs", {}).items():
            try:
                out[key] = self.resolver.resolve(spec["Value"])
            except KeyError:
                continue
        return out

    def sam_env_vars(self, endpoint: str) -> dict[str, dict[str, str]]:
        """An ``--env-vars`` file for ``sam local invoke`` / ``start-api`` against this stack: each
        function's variables as deployed here, and ``IRTCAT_AWS_ENDPOINT`` set to ``endpoint``
        (this stack's endpoint as a container reaches the host)."""
        return {spec.logical_id: {**spec.environment, "IRTCAT_AWS_ENDPOINT": endpoint}
                for spec in sorted(self.functions.values(), key=lambda f: f.logical_id)}

    def function_by_logical_id(self, logical_id: str) -> Runner:
        """The runner of a function, by its logical id."""
        for name, spec in self.functions.items():
            if spec.logical_id == logical_id:
                return self.runners[name]
        raise KeyError(logical_id)


def _physical(stack: str, logical_id: str, type_: str) -> str:
    base = f"{stack}-{logical_id}"
    if type_ == "AWS::S3::Bucket":
        return re.sub(r"[^a-z0-9-]", "-", base.lower())[:63]
    return base[:64]


def _attributes(name: str, logical_id: str, type_: str, props: dict[str, Any]) -> dict[tuple[str, str], str]:
    arn = {
        "AWS::Kinesis::Stream": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::KinesisFirehose::DeliveryStream": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::Pipes::Pipe": f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/{name}",
        "AWS::Lambda::LayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1",
    }.get(type_, f"arn:aws:local:{REGION}:{ACCOUNT}:{logical_id}")
    attrs = {(logical_id, "Arn"): arn, (logical_id, "Name"): name}
    if type_ == "AWS::SQS::Queue":
        attrs[(logical_id, "QueueName")] = name
        attrs[(logical_id, "QueueUrl")] = f"http://localhost/{ACCOUNT}/{name}"
    if type_ == "AWS::Lambda::LayerVersion":
        attrs[(logical_id, "LayerVersionArn")] = arn
    if type_ == "AWS::DynamoDB::Table":  # the real one is known once the table exists (_table)
        attrs[(logical_id, "StreamArn")] = f"{arn}/stream/planned"
    return attrs


def _ref_value(name: str, type_: str, attrs: dict[tuple[str, str], str], logical_id: str) -> str:
    if type_ in ("AWS::StepFunctions::StateMachine", "AWS::Lambda::LayerVersion"):
        return attrs[(logical_id, "Arn")]
    if type_ == "AWS::SQS::Queue":
        return attrs[(logical_id, "QueueUrl")]
    return name


def plan(
    root: str | Path,
    stack_name: str = "irtcat-local",
    parameters: dict[str, str] | None = None,
    template_file: str = "template.yaml",
) -> LocalStack:
    """Expand the template and name every resource, creating nothing (deterministic names)."""
    root = Path(root)
    sam = load_template(root / template_file)
    params = {k: str(v) for k, v in parameter_defaults(sam, parameters).items()}
    cfn = expand_sam(sam, params)
    resolver = Resolver(parameters=params, conditions=cfn.get("Conditions", {}), stack_name=stack_name)
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1").rstrip("/")
    for logical_id, res in cfn["Resources"].items():
        type_ = res["Type"]
        props = res.get("Properties", {})
        name = _physical(stack_name, logical_id, type_)
        if type_ == "AWS::Logs::LogGroup" and "LogGroupName" in props:
            continue  # may use !Sub: named in the second pass
        attrs = _attributes(name, logical_id, type_, props)
        if type_ == "AWS::SQS::Queue":
            attrs[(logical_id, "QueueUrl")] = f"{endpoint}/{ACCOUNT}/{name}"
        resolver.attributes.update(attrs)
        resolver.physical[logical_id] = _ref_value(name, type_, attrs, logical_id)
    for logical_id, res in cfn["Resources"].items():
        if res["Type"] == "AWS::Logs::LogGroup" and logical_id not in resolver.physical:
            name = str(resolver.resolve(res["Properties"]["LogGroupName"]))
            resolver.physical[logical_id] = name
            resolver.attributes.update(_attributes(name, logical_id, res["Type"], {}))
    stack = LocalStack(stack_name, root, cfn, resolver)
    for logical_id, res in stack.resources_of("AWS::Lambda::Function").items():
        _function(stack, logical_id, resolver.resolve(res.get("Properties", {})))
    return stack


CREATE_ORDER = [
    "AWS::Logs::LogGroup", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Kinesis::Stream",
    "AWS::SQS::Queue", "AWS::KinesisFirehose::DeliveryStream", "AWS::Lambda::Function",
    "AWS::StepFunctions::StateMachine", "AWS::Glue::Database", "AWS::Glue::Table",
    "AWS::Athena::WorkGroup", "AWS::Athena::NamedQuery",
    "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolGroup",
    "AWS::Lambda::EventSourceMapping",
]


def deploy(
    root: str | Path,
    stack_name: str = "irtcat-local",
    parameters: dict[str, str] | None = None,
    template_file: str = "template.yaml",
) -> LocalStack:
    """Plan the stack, then create its resources in the emulator (``AWS_ENDPOINT_URL``)."""
    stack = plan(root, stack_name, parameters, template_file)
    resolver = stack.resolver
    creators = {
        "AWS::Logs::LogGroup": _log_group, "AWS::S3::Bucket": _bucket, "AWS::DynamoDB::Table": _table,
        "AWS::Kinesis::Stream": _stream, "AWS::SQS::Queue": _queue,
        "AWS::KinesisFirehose::DeliveryStream": _firehose,
        "AWS::Lambda::Function": lambda *_: None,  # registered by plan(); served by the gateway
        "AWS::StepFunctions::StateMachine": _state_machine,
        "AWS::Glue::Database": _glue_database, "AWS::Glue::Table": _glue_table,
        "AWS::Athena::WorkGroup": _workgroup, "AWS::Athena::NamedQuery": _named_query,
        "AWS::Cognito::UserPool": _user_pool, "AWS::Cognito::UserPoolClient": _user_pool_client,
        "AWS::Cognito::UserPoolGroup": _user_pool_group,
        "AWS::Lambda::EventSourceMapping": _event_source_mapping,
    }
    for type_ in CREATE_ORDER:
        for logical_id, res in stack.resources_of(type_).items():
            if "Condition" in res and not resolver.condition(res["Condition"]):
                continue
            creators[type_](stack, logical_id, resolver.resolve(res.get("Properties", {})))
            stack.created[logical_id] = type_
    for logical_id, res in stack.template["Resources"].items():
        if logical_id not in stack.created:
            stack.skipped[logical_id] = NOT_EMULATED.get(
                res["Type"], "emulated by irtcat local" if res["Type"] in (
                    "AWS::Pipes::Pipe", "AWS::ApiGatewayV2::Api") else "not emulated")
    return stack


_CLIENTS: dict[tuple[str, str], Any] = {}


def _client(service: str) -> Any:
    """One client per service and endpoint: creating a boto3 client is costly, and a stack has
    dozens of resources."""
    key = (service, os.environ.get("AWS_ENDPOINT_URL", ""))
    if key not in _CLIENTS:
        _CLIENTS[key] = boto3.client(service, region_name=REGION)
    return _CLIENTS[key]


def _log_group(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    logs = _client("logs")
    name = stack.name(logical_id)
    logs.create_log_group(logGroupName=name)
    if props.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))


def _bucket(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    s3 = _client("s3")
    name = stack.name(logical_id)
    s3.create_bucket(Bucket=name)
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                      for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if props.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])


def _table(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    ddb = _client("dynamodb")
    name = stack.name(logical_id)
    kwargs: dict[str, Any] = {
        "TableName": name, "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"], "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    created = ddb.create_table(**kwargs)["TableDescription"]
    if stream:
        stack.resolver.attributes[(logical_id, "StreamArn")] = created["LatestStreamArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _event_source_mapping(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    """Recorded for the runtime, which polls the stream (moto's mappings need Docker); only
    DynamoDB stream sources are emulated."""
    if ":dynamodb:" not in str(props.get("EventSourceArn", "")):
        raise ValueError(f"{logical_id}: only DynamoDB stream event sources run locally")
    stack.stream_mappings.append(StreamMapping.from_template(props))


def _stream(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    kinesis = _client("kinesis")
    name = stack.name(logical_id)
    kinesis.create_stream(StreamName=name, ShardCount=int(props.get("ShardCount", 1)))
    enc = props.get("StreamEncryption")
    if enc:
        kinesis.start_stream_encryption(StreamName=name, EncryptionType=enc["EncryptionType"], KeyId=enc["KeyId"])


def _queue(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    sqs = _client("sqs")
    attrs = {}
    if "MessageRetentionPeriod" in props:
        attrs["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
    if props.get("SqsManagedSseEnabled"):
        attrs["SqsManagedSseEnabled"] = "true"
    url = sqs.create_queue(QueueName=stack.attr(logical_id, "QueueName"), Attributes=attrs)["QueueUrl"]
    stack.resolver.physical[logical_id] = url
    stack.resolver.attributes[(logical_id, "QueueUrl")] = url


def _firehose(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    firehose = _client("firehose")
    dest = dict(props["ExtendedS3DestinationConfiguration"])
    dest.pop("CloudWatchLoggingOptions", None)
    firehose.create_delivery_stream(
        DeliveryStreamName=stack.name(logical_id),
        DeliveryStreamType=props.get("DeliveryStreamType", "DirectPut"),
        ExtendedS3DestinationConfiguration=dest,
    )


def _function(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    code = props["Code"]
    code_dir = stack.root / code["S3Key"]
    env = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
    name = stack.name(logical_id)
    spec = FunctionSpec(
        logical_id=logical_id, name=name, code_dir=str(code_dir), handler=props["Handler"],
        environment=env, timeout_s=float(props.get("Timeout", 3)), memory_mb=int(props.get("MemorySize", 128)),
    )
    stack.functions[name] = spec
    stack.runners[name] = InProcessFunction(spec)


def _glue_database(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    name = props["DatabaseInput"]["Name"]
    _client("glue").create_database(DatabaseInput=props["DatabaseInput"])
    stack.resolver.physical[logical_id] = name


def _glue_table(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    _client("glue").create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])


def _workgroup(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {k: props[k] for k in ("Name", "Description") if k in props}
    if "WorkGroupConfiguration" in props:
        kwargs["Configuration"] = props["WorkGroupConfiguration"]
    _client("athena").create_work_group(**kwargs)
    stack.resolver.physical[logical_id] = props["Name"]


def _named_query(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    _client("athena").create_named_query(
        Name=props["Name"], Description=props.get("Description", ""), Database=props["Database"],
        QueryString=props["QueryString"], WorkGroup=props.get("WorkGroup", "primary"))


def _user_pool(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"PoolName": props.get("UserPoolName", stack.name(logical_id))}
    for key in ("Policies", "AdminCreateUserConfig", "UsernameConfiguration", "AccountRecoverySetting"):
        if key in props:
            kwargs[key] = props[key]
    pool = _client("cognito-idp").create_user_pool(**kwargs)["UserPool"]
    stack.resolver.physical[logical_id] = pool["Id"]
    stack.resolver.attributes.update({
        (logical_id, "Arn"): pool["Arn"], (logical_id, "UserPoolId"): pool["Id"],
        (logical_id, "ProviderName"): f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}",
        (logical_id, "ProviderURL"): f"https://cognito-idp.{REGION}.amazonaws.com/{pool['Id']}",
    })


def _user_pool_client(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    kwargs = {k: props[k] for k in ("ClientName", "UserPoolId", "GenerateSecret", "ExplicitAuthFlows",
                                    "PreventUserExistenceErrors") if k in props}
    client = _client("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
    stack.resolver.physical[logical_id] = client["ClientId"]
    stack.resolver.attributes[(logical_id, "ClientId")] = client["ClientId"]


def _user_pool_group(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    _client("cognito-idp").create_group(
        GroupName=props["GroupName"], UserPoolId=props["UserPoolId"], Description=props.get("Description", ""))
    stack.resolver.physical[logical_id] = props["GroupName"]


def _state_machine(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    sfn = _client("stepfunctions")
    loc = props.get("DefinitionS3Location")
    definition = (stack.root / loc["Key"]).read_text(encoding="utf-8") if loc else props["DefinitionString"]
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    unresolved = re.findall(r"\$\{[A-Za-z0-9]+\}", definition)
    if unresolved:
        raise ValueError(f"{logical_id}: unresolved substitutions {unresolved}")
    json.loads(definition)
    kwargs: dict[str, Any] = {
        "name": stack.attr(logical_id, "Name"), "definition": definition,
        "roleArn": props["RoleArn"], "type": props.get("StateMachineType", "STANDARD"),
    }
    arn = sfn.create_state_machine(**kwargs)["stateMachineArn"]
    stack.resolver.physical[logical_id] = arn
    stack.resolver.attributes[(logical_id, "Arn")] = arn
