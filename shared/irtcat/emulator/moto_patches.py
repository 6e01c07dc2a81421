"""Every change the local runtime makes to moto, in one place.

moto is locked (``locks/dev.txt``; ``./dev deps upgrade`` moves it and :data:`MOTO_VERSION` together);
:func:`check_moto_version` refuses any other version, because
each patch below replaces an internal of that version. Each patch names the moto behaviour it
changes and is one of two kinds:

* **correctness**: moto 5.2.5 differs from AWS in a way the pipeline would notice. Each has a
  minimal reproduction against plain moto in ``docs/moto.md`` (upstream-ready);
  ``tests/unit/test_moto_patches.py`` runs every reproduction (it must still show the bug, or the
  fix can go) and checks the fixed behaviour. Two of them are not patches of moto's code but of
  how requests reach it: the gateway serialises the calls of :data:`SERIALISED_SERVICES`, and
  it answers ``StartSyncExecution`` itself (:func:`start_sync_execution`).
* **speed**: moto's behaviour is right but slow for a pipeline that runs thousands of Express
  executions. Each one kept has paid for itself in ``./dev bench --only moto_patches`` (the
  pipeline with that patch off against all on; docs/moto.md has the figures and the patches
  that did not pay and were dropped). ``IRTCAT_MOTO_PATCHES_OFF=name,...`` turns them off.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import re
import threading
import time
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

MOTO_VERSION = "5.2.5"

# moto backends whose state is not safe under concurrent requests, so the gateway serialises
# their calls (the real services order them per table item and per shard); docs/moto.md has a
# reproduction of each:
# - dynamodb: a failed TransactWriteItems rolls back by restoring a deep copy of the whole table
#   taken before it started, which undoes the writes other request threads made meanwhile;
# - kinesis: PutRecord numbers a record "last sequence number + 1", so two concurrent puts can
#   get the same number and one record replaces the other.
SERIALISED_SERVICES = ("dynamodb", "kinesis")


class UnsupportedMoto(RuntimeError):
    """The installed moto is not the version these patches were written and tested against."""


def check_moto_version() -> None:
    """Refuse to patch a moto other than :data:`MOTO_VERSION`, with what to do about it."""
    import moto

    installed = getattr(moto, "__version__", "unknown")
    if installed != MOTO_VERSION:
        raise UnsupportedMoto(
            f"the local runtime patches moto {MOTO_VERSION}, but moto {installed} is installed: "
            f"install moto[server]=={MOTO_VERSION} (./dev deps sync installs the lock), or, to move to "
            f"{installed}, re-check each patch in shared/irtcat/emulator/moto_patches.py and run "
            "tests/unit/test_moto_patches.py (its reproductions say which moto bugs remain)")


@dataclass(frozen=True)
class Patch:
    name: str
    kind: Kind
    changes: str  # the moto behaviour it changes
    apply: Callable[[], None]


PATCHES: dict[str, Patch] = {}


Kind = Literal["correctness", "speed"]


def _patch(name: str, kind: Kind, changes: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(apply: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = Patch(name, kind, changes, apply)
        return apply

    return register


def switched_off() -> set[str]:
    """The speed patches named in ``IRTCAT_MOTO_PATCHES_OFF`` (for measuring what each buys)."""
    names = {n.strip() for n in os.environ.get("IRTCAT_MOTO_PATCHES_OFF", "").split(",") if n.strip()}
    unknown = names - set(PATCHES)
    if unknown:
        raise ValueError(f"IRTCAT_MOTO_PATCHES_OFF: no patch named {sorted(unknown)} (known: {sorted(PATCHES)})")
    correctness = sorted(n for n in names if PATCHES[n].kind == "correctness")
    if correctness:
        raise ValueError(f"IRTCAT_MOTO_PATCHES_OFF: {correctness} fix moto bugs and cannot be switched off")
    return names


_APPLIED: set[str] = set()
_LOCK = threading.Lock()


def apply(names: tuple[str, ...] | None = None) -> list[str]:
    """Apply the named patches (default: all) once per process, except those switched off; the
    names applied."""
    check_moto_version()
    off = switched_off()
    done = []
    with _LOCK:
        for name in names if names is not None else tuple(PATCHES):
            if name in off:
                continue
            if name not in _APPLIED:
                PATCHES[name].apply()
                _APPLIED.add(name)
            done.append(name)
    return done


# ----------------------------------------------------------------------------- correctness

@_patch("stream_reads_follow_the_table", "correctness",
        "a DynamoDB shard iterator reads the stream shard object it was created on; a failed "
        "TransactWriteItems replaces the table, shard included, with a copy taken before it, so an "
        "iterator taken before reads the records the rollback undid, and a reader that moves past "
        "them skips the real records that later take their sequence numbers")
def _stream_reads_follow_the_table() -> None:
    from moto.dynamodbstreams.models import ShardIterator

    read = ShardIterator.get

    def get(self: Any, limit: int = 1000) -> dict[str, Any]:
        # the table as it is now (after any rollback), not as it was when the iterator was made
        table = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        if table is not None and table.stream_shard is not None:
            self.stream_shard = table.stream_shard
        return dict(read(self, limit))

    ShardIterator.get = get  # type: ignore[method-assign]


@_patch("machines_run_as_their_type", "correctness",
        "every execution runs as a STANDARD workflow: a state machine's sm_type is set once, to "
        "STANDARD, whatever the Type it was created with")
def _run_machines_as_their_type() -> None:
    from moto.stepfunctions.models import StateMachine

    machine: Any = StateMachine
    machine.sm_type = property(lambda self: self.type, lambda self, value: None)


# services whose botocore model speaks a REST protocol (the operation in the method and path) where
# moto routes only the JSON protocol's single path "/" (the operation in X-Amz-Target)
REST_ROUTED_SERVICES = ("athena",)


def rest_routes(service: str) -> dict[str, str]:
    """moto URL patterns (``{0}`` for the service's base URL) for every operation of ``service`` in
    the installed botocore's model, if that model speaks rest-json or rest-xml: each requestUri's
    path, its ``{Label}``s as named groups (``{Label+}`` spans slashes). Empty for other protocols."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    protocols = model.metadata.get("protocols") or [model.metadata.get("protocol")]
    if not {"rest-json", "rest-xml"} & set(protocols):
        return {}
    routes = {}
    for name in model.operation_names:
        path = model.operation_model(name).http["requestUri"].split("?", 1)[0].rstrip("/")
        # the paths are plain (letters, digits, '-', '/'), so they stay as they are: moto turns
        # each pattern into a Flask rule too, and that takes no escapes
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", path)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        routes["{0}" + pattern + "/?$"] = name
    return routes


@_patch("rest_protocol_routes", "correctness",
        "a service's url_paths route only the JSON protocol's '/', so a request of the REST protocol "
        "that botocore's model speaks for it (Athena: rest-json, from botocore 1.44.18) answers 404 "
        "Not yet implemented; routed, its response class finds the operation from the method and "
        "path, but reads query-string members as strings (MaxResults)")
def _route_rest_protocols() -> None:
    import botocore.session

    for service in REST_ROUTED_SERVICES:
        urls = importlib.import_module(f"moto.{service}.urls")
        response_class = next(iter(urls.url_paths.values())).__self__
        model = botocore.session.get_session().get_service_model(service)
        routed = _rest_dispatcher(response_class, model)
        for pattern in rest_routes(service):
            urls.url_paths.setdefault(pattern, routed)


def _rest_dispatcher(response_class: Any, model: Any) -> Callable[..., Any]:
    """A view for moto's router (a named function: moto names its Flask endpoints after it)."""
    def rest_dispatch(request: Any, full_url: Any = None, headers: Any = None) -> Any:
        return _dispatch_rest(response_class, model, request, full_url, headers)

    return rest_dispatch


def _dispatch_rest(response_class: Any, model: Any, request: Any, full_url: Any, headers: Any) -> Any:
    """The response class's dispatch, with the operation's query-string members moved into the
    JSON body with their model types, where its handlers look for them."""
    handler = response_class()
    setup = handler.setup_class

    def typed_setup(*args: Any, **kwargs: Any) -> Any:
        out = setup(*args, **kwargs)
        operation = model.operation_model(handler._get_action())
        members = operation.input_shape.members if operation.input_shape is not None else {}
        body = json.loads(handler.body or "{}")
        for name, shape in members.items():
            key = shape.serialization.get("name", name)
            if shape.serialization.get("location") == "querystring" and key in handler.querystring:
                body[name] = _typed(handler.querystring.pop(key), shape)
        handler.body = json.dumps(body)
        return out

    handler.setup_class = typed_setup
    return handler._dispatch(request, full_url, headers)


def _typed(values: list[str], shape: Any) -> Any:
    """A query-string value as its model shape's JSON type."""
    if shape.type_name == "list":
        return [_typed([v], shape.member) for v in values]
    value = values[0]
    if shape.type_name in ("integer", "long"):
        return int(value)
    if shape.type_name in ("float", "double"):
        return float(value)
    if shape.type_name == "boolean":
        return value.lower() == "true"
    return value


_EXECUTION_ENDED = threading.Condition()


@_patch("signal_execution_ends", "correctness",
        "nothing in moto waits for an execution to end; StartSyncExecution (which moto lacks, "
        "served by start_sync_execution) needs to")
def _signal_execution_ends() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    comm: Any = BaseExecutionWorkerCommunication
    original = comm.terminated

    def terminated(self: Any) -> None:
        original(self)
        with _EXECUTION_ENDED:
            _EXECUTION_ENDED.notify_all()

    comm.terminated = terminated


# an Express execution runs for at most five minutes
EXPRESS_LIMIT_S = 300.0


def start_sync_execution(raw: bytes) -> tuple[int, dict[str, Any]]:
    """StartSyncExecution, which moto lacks: start an Express execution in moto's backend and
    answer when it has ended, with the API's response (status SUCCEEDED, FAILED or TIMED_OUT,
    output or error and cause), or an error ``(400, {"__type": ..., "message": ...})``. It is
    what a Pipe with a REQUEST_RESPONSE Express target calls."""
    from moto.stepfunctions.responses import get_backend

    def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
        return 400, {"__type": code, "message": message}

    try:
        request = json.loads(raw or b"{}")
        if not isinstance(request, dict):
            raise ValueError("the request body is not a JSON object")
    except ValueError as exc:
        return error("SerializationException", f"malformed request: {exc}")
    arn = str(request.get("stateMachineArn", ""))
    parts = arn.split(":")
    if len(parts) < 7 or parts[5] != "stateMachine":
        return error("InvalidArn", f"Invalid State Machine Arn: '{arn}'")
    backend = get_backend(parts[4], parts[3])
    try:
        machine = backend.describe_state_machine(arn)
    except Exception:  # moto's StateMachineDoesNotExist
        return error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
    if machine.type != "EXPRESS":
        return error("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
    try:
        execution = backend.start_execution(arn, request.get("name") or str(uuid.uuid4()), request.get("input", "{}"))
    except Exception as exc:  # moto's InvalidExecutionInput, InvalidName
        return error(type(exc).__name__, str(exc))
    deadline = time.monotonic() + EXPRESS_LIMIT_S
    with _EXECUTION_ENDED:
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            _EXECUTION_ENDED.wait(timeout=0.5)
    outcomes = {"SUCCEEDED": "SUCCEEDED", "TIMED_OUT": "TIMED_OUT", "RUNNING": "TIMED_OUT"}
    status = outcomes.get(execution.status, "FAILED")
    response: dict[str, Any] = {
        "executionArn": execution.execution_arn, "stateMachineArn": arn, "name": execution.name,
        "startDate": execution.start_date.timestamp(),
        "stopDate": (execution.stop_date or datetime.now(UTC)).timestamp(),
        "status": status, "input": execution.execution_input, "inputDetails": {"included": True},
    }
    if status == "SUCCEEDED":
        response["output"] = json.dumps(execution.output, separators=(",", ":"))
        response["outputDetails"] = {"included": True}
    for key in ("error", "cause"):
        if getattr(execution, key, None) is not None:
            response[key] = getattr(execution, key)
    return 200, response


# ----------------------------------------------------------------------------- speed

def route_state_machine_clients(lambda_client: Any) -> None:
    """moto's state machines build a new boto3 client for every Task (a costly step): reuse one
    per (region, service), and send Lambda invocations to ``lambda_client`` (the gateway's
    in-process Invoke, same contract as the HTTP route). Applied by the emulator server, which
    owns that client; switch it off as ``state_machine_clients``."""
    if "state_machine_clients" in switched_off():
        return
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = getattr(boto_client.boto_client_for, "_irtcat_original", boto_client.boto_client_for)
    cache: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def cached(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return lambda_client
        key = (region, service)
        with lock:
            if key not in cache:
                cache[key] = original(region, service, state_credentials)
            return cache[key]

    cached._irtcat_original = original  # type: ignore[attr-defined]
    boto_client.boto_client_for = cached
    mod = importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils")
    mod.boto_client_for = cached  # type: ignore[attr-defined]


PATCHES["state_machine_clients"] = Patch(
    "state_machine_clients", "speed",
    "a new boto3 client for every Task state, and Lambda reached over HTTP, on every Task",
    lambda: None)  # applied by route_state_machine_clients, which needs the gateway's client


@_patch("jsonpath_parses", "speed",
        "every JSONPath (ResultPath, InputPath, ...) parsed with a fresh yacc parser at every state")
def _cache_jsonpath_parsing() -> None:
    for module in ("moto.stepfunctions.parser.asl.component.common.path.result_path",
                   "moto.stepfunctions.parser.asl.utils.json_path"):
        mod = importlib.import_module(module)
        parse = getattr(mod, "parse")  # noqa: B009 - the module is chosen at run time
        setattr(mod, "parse", functools.lru_cache(maxsize=1024)(parse))  # noqa: B010


@_patch("asl_parse_trees", "speed",
        "the state machine definition parsed with ANTLR at every execution (22 ms warm here)")
def _cache_asl_parse_trees() -> None:
    # the parse tree of a definition never changes; the evaluation components are still built
    # fresh from it for every execution (they hold per-execution state)
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    parser_cls = asl_parser.AmazonStateLanguageParser
    original = parser_cls.parse
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
        if tree is None:
            _, tree = original(definition)
            with lock:
                trees[definition] = tree
        return Preprocessor().visit(tree), tree

    parser_cls.parse = staticmethod(parse)  # type: ignore[method-assign]


@_patch("light_express_history", "speed",
        "every state's whole input and output written into the execution history as JSON, for "
        "Express executions too (which have no execution history on AWS)")
def _lighten_express_history() -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    cls: Any = CommonStateField
    entered, exited = cls._get_state_entered_event_details, cls._get_state_exited_event_details

    def entered_details(self: Any, env: Any) -> Any:
        if env.is_standard_workflow():
            return entered(self, env)
        return {"name": self.name, "input": "", "inputDetails": {"truncated": False}}

    def exited_details(self: Any, env: Any) -> Any:
        if env.is_standard_workflow():
            return exited(self, env)
        env.variable_store.reset_tracing()
        return {"name": self.name, "output": "", "outputDetails": {"truncated": False}}

    cls._get_state_entered_event_details = entered_details
    cls._get_state_exited_event_details = exited_details


_JSON_SCALARS = (str, int, float, bool, type(None))


def copy_json(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` for JSON data, a few times faster: dicts and lists are rebuilt, strings,
    numbers, booleans and None are immutable; anything else goes to ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()} if type(value) is dict else copy.deepcopy(value)
    if type(value) is list:
        return [copy_json(v) for v in value]
    if isinstance(value, _JSON_SCALARS):
        return value
    return copy.deepcopy(value)


# the modules of moto's interpreter that deep-copy the state data as it flows between states
_STATE_DATA_MODULES = (
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map",
)


@_patch("json_state_copies", "speed",
        "a state's data deep-copied with copy.deepcopy at every read and write")
def _copy_state_data_as_json() -> None:
    shim = types.SimpleNamespace(deepcopy=copy_json)
    for name in _STATE_DATA_MODULES:
        importlib.import_module(name).copy = shim  # type: ignore[attr-defined]


_ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                              "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})


def _is_plain_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain_json(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


@_patch("direct_item_results", "speed",
        "DynamoDB item results, already in the wire format, walked member by member against the "
        "service model, for every item read")
def _serialise_item_results_directly() -> None:
    # for item operations whose result is plain JSON with only the output's members, that walk
    # is the identity, so the result is written as it is; anything else still goes through it
    from moto.dynamodb.responses import DynamoResult

    cls: Any = DynamoResult
    generic = cls.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        operation = context.operation_model
        if (operation.name in _ITEM_OPERATIONS and isinstance(result, dict)
                and set(result) <= set(operation.output_shape.members) and _is_plain_json(result)):
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(result)
        return generic(self, context)

    execute_result._irtcat_generic = generic  # type: ignore[attr-defined]
    cls.execute_result = execute_result


@_patch("module_list", "speed", "moto's package directory listed on every request to route it")
def _cache_moto_module_list() -> None:
    from moto import backends
    from moto.moto_server import werkzeug_app

    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    backends.list_of_moto_modules = cached
    werkzeug_app.backends.list_of_moto_modules = cached  # type: ignore[attr-defined]


# what each emulator process applies: the service process (DynamoDB, Kinesis) runs no state machine
SERVICE_PATCHES = ("direct_item_results", "module_list", "stream_reads_follow_the_table", "rest_protocol_routes")
STATE_MACHINE_PATCHES = tuple(name for name in PATCHES if name not in SERVICE_PATCHES)
