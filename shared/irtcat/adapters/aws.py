"""The only module that talks to AWS: DynamoDB repositories, the S3 bank store, the Firehose
history sink and the S3 quarantine. Configuration comes from the environment (see README)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..domain.bank import ItemBank, media_type
from ..domain.events import AnswerEvent
from ..domain.history import HistoryRecord
from ..domain.policy import TestDefinition, TestPolicy
from ..domain.ports import BankStore, Conflict, NotFound
from ..domain.session import SessionState
from ..domain.stored import outbox_context, pack, pack_outbox, state_context, unpack
from ..domain.student import Accommodations, StudentProfile, pack_seen, unpack_seen

T = TypeVar("T")
_RETRYABLE = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure",
    "LimitExceededException", "SlowDown",
}


@dataclass(frozen=True)
class Settings:
    """Resource names, from the function's environment (set by template.yaml)."""

    table_name: str
    bank_bucket: str
    history_stream: str
    history_bucket: str
    session_ttl_days: int = 400

    @classmethod
    def from_env(cls) -> Settings:
        def need(name: str) -> str:
            value = os.environ.get(name)
            if not value:
                raise RuntimeError(f"environment variable {name} is not set")
            return value

        return cls(
            table_name=need("TABLE_NAME"), bank_bucket=need("BANK_BUCKET"),
            history_stream=need("HISTORY_STREAM"), history_bucket=need("HISTORY_BUCKET"),
            session_ttl_days=int(os.environ.get("SESSION_TTL_DAYS", "400")),
        )


@cache
def client(service: str) -> Any:
    """One boto3 client per service per process (Lambda containers reuse it).

    boto3 honours ``AWS_ENDPOINT_URL``, which is how the local runtime points it at the
    emulator; ``IRTCAT_AWS_ENDPOINT`` (a variable the template declares, empty on AWS) does the
    same for ``sam local``, which passes a function only the variables its template declares.
    Adaptive retries absorb throttling.
    """
    # Signature Version 4 for S3 too: the signed media links (S3MediaLinks) are SigV4 links
    return boto3.client(service, endpoint_url=os.environ.get("IRTCAT_AWS_ENDPOINT") or None,
                        config=Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5,
                                      read_timeout=20, signature_version="s3v4" if service == "s3" else None))


def reset_caches() -> None:
    """Forget clients and cached banks (a new endpoint or a fresh stack in the same process)."""
    client.cache_clear()
    S3BankStore._banks.clear()
    S3BankStore._policies.clear()


def with_retries(fn: Callable[[], T], attempts: int = 6, base: float = 0.05) -> T:
    """Retry a call on throttling/5xx with full-jitter exponential backoff (on top of boto3's)."""
    for k in range(attempts):
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if (code not in _RETRYABLE and status < 500) or k == attempts - 1:
                raise
            time.sleep(random.uniform(0, base * 2**k))
    raise AssertionError("unreachable")


def _session_key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "STATE"}}


# the profile item's attribute holding one test's seen items: seen#{test_id}
SEEN_PREFIX = "seen#"
# ... one test's accommodations (acc#* for every test), and the group variables (JSON): set by a
# teacher or an admin, beside what sessions write, so neither overwrites the other
ACCOMMODATIONS_PREFIX = "acc#"
GROUPS_ATTRIBUTE = "groups"


def _latest_key(student_id: str, test_id: str) -> dict[str, Any]:
    """The pointer to a student's latest session of a test (one active session per test)."""
    return {"pk": {"S": f"STUDENT#{student_id}"}, "sk": {"S": f"LATEST#{test_id}"}}


def _student_key(student_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"STUDENT#{student_id}"}, "sk": {"S": "PROFILE"}}


# the session item's attribute that carries the last write's history records
OUTBOX_ATTRIBUTE = "outbox"
# a test's sessions, newest first: keys only (template.yaml)
SESSIONS_BY_TEST = "sessions_by_test"


class DynamoSessions:
    """Sessions as one item each: the stored form (:mod:`irtcat.domain.stored`) in ``doc``,
    ``version`` for locking, the identity and status beside it; banks and policies, which the
    stored form refers to, from ``catalog``."""

    def __init__(self, settings: Settings, catalog: BankStore) -> None:
        self.table = settings.table_name
        self.ttl_seconds = settings.session_ttl_days * 86400
        self.catalog = catalog

    def get(self, session_id: str, consistent: bool = True) -> SessionState | None:
        resp = with_retries(lambda: client("dynamodb").get_item(
            TableName=self.table, Key=_session_key(session_id), ConsistentRead=consistent))
        item = resp.get("Item")
        return self.state_of(item) if item else None

    def state_of(self, item: dict[str, Any]) -> SessionState:
        """The working state of a session item (in DynamoDB's wire format)."""
        return unpack(json.loads(item["doc"]["S"]), session_id=item["pk"]["S"].removeprefix("SESSION#"),
                      student_id=item["student_id"]["S"], status=item["status"]["S"],
                      version=int(item["version"]["N"]), bank_of=self.catalog.bank, policy_of=self.catalog.policy)

    def _item(self, state: SessionState, outbox: list[HistoryRecord] | None = None) -> dict[str, Any]:
        doc = pack(state, self.catalog.bank(state.bank_id, state.bank_version))
        item = {
            **_session_key(state.session_id),
            "doc": {"S": json.dumps(doc, separators=(",", ":"))},
            "version": {"N": str(state.version)},
            "status": {"S": state.status},
            "student_id": {"S": state.student_id},
            "expires_at": {"N": str(int(time.time()) + self.ttl_seconds)},
            # the sessions_by_test index (keys only: written when a session starts, never per answer):
            # a test's sessions, newest first
            "gsi1pk": {"S": f"TEST#{state.test_id}"},
            "gsi1sk": {"S": f"{state.created_at.isoformat()}#{state.session_id}"},
        }
        if outbox:
            # the step's history records, written with the state they describe: the table's
            # stream hands them to ShipHistory (a transactional outbox in one item)
            item[OUTBOX_ATTRIBUTE] = {"S": pack_outbox(outbox, state_context(state))}
        return item

    def list_by_test(self, test_id: str, limit: int = 50) -> list[SessionState]:
        """A test's most recent sessions: their keys from the ``sessions_by_test`` index, then the items
        (eventually consistent: a teacher's list may be a moment behind)."""
        resp = with_retries(lambda: client("dynamodb").query(
            TableName=self.table, IndexName=SESSIONS_BY_TEST, KeyConditionExpression="gsi1pk = :t",
            ExpressionAttributeValues={":t": {"S": f"TEST#{test_id}"}}, ScanIndexForward=False, Limit=limit))
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in resp.get("Items", [])]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes up to 100 keys
            pending: dict[str, Any] = {self.table: {"Keys": keys[start:start + 100]}}
            for attempt in range(8):
                got = with_retries(lambda ask=pending: client("dynamodb").batch_get_item(  # type: ignore[misc]
                    RequestItems=ask))
                for item in got.get("Responses", {}).get(self.table, []):
                    found[item["pk"]["S"]] = item
                pending = got.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
        return [self.state_of(found[k["pk"]["S"]]) for k in keys if k["pk"]["S"] in found]

    def latest_for(self, student_id: str, test_id: str) -> SessionState | None:
        """The student's most recently started session of the test (its pointer item)."""
        resp = with_retries(lambda: client("dynamodb").get_item(
            TableName=self.table, Key=_latest_key(student_id, test_id), ConsistentRead=True))
        item = resp.get("Item")
        return self.get(item["session_id"]["S"]) if item else None

    def create(self, state: SessionState, replaces: str | None = None) -> None:
        """Put a new session and point the student's latest session of the test at it, in one
        transaction; the pointer must still name ``replaces`` (or be absent): otherwise another
        start won the race and :class:`Conflict` is raised."""
        pointer: dict[str, Any] = {
            "TableName": self.table,
            "Item": {**_latest_key(state.student_id, state.test_id), "session_id": {"S": state.session_id}},
            "ConditionExpression": "attribute_not_exists(pk)" if replaces is None else "session_id = :old",
        }
        if replaces is not None:
            pointer["ExpressionAttributeValues"] = {":old": {"S": replaces}}
        put = {"TableName": self.table, "Item": self._item(state), "ConditionExpression": "attribute_not_exists(pk)"}
        try:
            with_retries(lambda: client("dynamodb").transact_write_items(
                TransactItems=[{"Put": put}, {"Put": pointer}]))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") == "TransactionCanceledException":
                raise Conflict(f"another session of {state.student_id} in {state.test_id} started meanwhile") from exc
            raise

    def commit(self, state: SessionState, expected_version: int, profile: StudentProfile | None,
               outbox: list[HistoryRecord] | None = None) -> None:
        put = {
            "TableName": self.table, "Item": self._item(state, outbox),
            "ConditionExpression": "#v = :expected",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
        ddb = client("dynamodb")
        try:
            if profile is None:
                with_retries(lambda: ddb.put_item(**put))
            else:
                # each test's seen items in an attribute of its own: writing one keeps the others
                names = {f"#seen{k}": f"{SEEN_PREFIX}{test}" for k, test in enumerate(profile.seen)}
                values = {f":seen{k}": {"S": pack_seen(ids)} for k, ids in enumerate(profile.seen.values())}
                sets = "".join(f", #seen{k} = :seen{k}" for k in range(len(profile.seen)))
                update: dict[str, Any] = {
                    "TableName": self.table, "Key": _student_key(profile.student_id),
                    "UpdateExpression": f"SET doc = :doc, updated_at = :at{sets} ADD sessions_finished :one",
                    "ExpressionAttributeValues": {
                        ":doc": {"S": profile.model_dump_json(exclude={"seen", "accommodations", "groups"})},
                        ":at": {"S": profile.updated_at.isoformat()}, ":one": {"N": "1"}, **values,
                    },
                }
                if names:
                    update["ExpressionAttributeNames"] = names
                with_retries(lambda: ddb.transact_write_items(
                    TransactItems=[{"Put": put}, {"Update": update}]))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException" or (
                code == "TransactionCanceledException" and "ConditionalCheckFailed" in str(exc)
            ):
                raise Conflict(f"session {state.session_id} is no longer at version {expected_version}") from exc
            raise


def outbox_of(image: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A session write's outbox, as the table's stream delivers its new image, and what its
    records share with the state (None: a write without one)."""
    if OUTBOX_ATTRIBUTE not in image or "doc" not in image:
        return None
    context = outbox_context(image["pk"]["S"].removeprefix("SESSION#"), image["student_id"]["S"],
                             json.loads(image["doc"]["S"]))
    return image[OUTBOX_ATTRIBUTE]["S"], context


class DynamoStudents:
    """Student profiles: last known ability and seen items (written by sessions), accommodations
    and group variables (written by teachers and admins), one item per student."""

    def __init__(self, settings: Settings) -> None:
        self.table = settings.table_name

    def get(self, student_id: str) -> StudentProfile | None:
        resp = with_retries(lambda: client("dynamodb").get_item(
            TableName=self.table, Key=_student_key(student_id), ConsistentRead=True))
        item = resp.get("Item")
        if not item:
            return None
        if "doc" in item:
            profile = StudentProfile.model_validate_json(item["doc"]["S"])
        else:  # accommodations or groups set before any finished session
            profile = StudentProfile(student_id=student_id, updated_at=datetime.now(UTC))
        finished = int(item.get("sessions_finished", {}).get("N", "0"))
        seen = {name[len(SEEN_PREFIX):]: unpack_seen(value["S"]) for name, value in item.items()
                if name.startswith(SEEN_PREFIX)}
        accommodations = {name[len(ACCOMMODATIONS_PREFIX):]: Accommodations.model_validate_json(value["S"])
                          for name, value in item.items() if name.startswith(ACCOMMODATIONS_PREFIX)}
        groups = json.loads(item[GROUPS_ATTRIBUTE]["S"]) if GROUPS_ATTRIBUTE in item else {}
        return profile.model_copy(update={"sessions_finished": finished, "seen": seen,
                                          "accommodations": accommodations, "groups": groups})

    def set_accommodations(self, student_id: str, test_id: str, accommodations: Accommodations | None) -> None:
        """Set (or with None, remove) a student's accommodations for a test (``*``: every test)."""
        names = {"#a": f"{ACCOMMODATIONS_PREFIX}{test_id}"}
        if accommodations is None or accommodations == Accommodations():
            with_retries(lambda: client("dynamodb").update_item(
                TableName=self.table, Key=_student_key(student_id), UpdateExpression="REMOVE #a",
                ExpressionAttributeNames=names))
            return
        with_retries(lambda: client("dynamodb").update_item(
            TableName=self.table, Key=_student_key(student_id), UpdateExpression="SET #a = :a",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":a": {"S": accommodations.model_dump_json(exclude_defaults=True)}}))

    def set_groups(self, student_id: str, groups: dict[str, str]) -> None:
        """Replace a student's group variables (``{}`` removes them)."""
        if not groups:
            with_retries(lambda: client("dynamodb").update_item(
                TableName=self.table, Key=_student_key(student_id), UpdateExpression="REMOVE #g",
                ExpressionAttributeNames={"#g": GROUPS_ATTRIBUTE}))
            return
        with_retries(lambda: client("dynamodb").update_item(
            TableName=self.table, Key=_student_key(student_id), UpdateExpression="SET #g = :g",
            ExpressionAttributeNames={"#g": GROUPS_ATTRIBUTE},
            ExpressionAttributeValues={":g": {"S": json.dumps(groups, sort_keys=True)}}))


class S3BankStore:
    """Banks at ``banks/{bank_id}/v{version}.json``, the current version at
    ``banks/{bank_id}/current.json`` and tests at ``tests/{test_id}.json``.

    A bank version never changes once written, so it is cached for the life of the process;
    the pointer and test definitions are cached for ``ttl`` seconds.
    """

    # shared by every store in the process: a bank version or policy version never changes once written
    _banks: ClassVar[dict[tuple[str, int], ItemBank]] = {}
    _policies: ClassVar[dict[tuple[str, int], TestPolicy]] = {}

    def __init__(self, settings: Settings, ttl: float = 30.0) -> None:
        self.bucket = settings.bank_bucket
        self.ttl = ttl
        self._small: dict[str, tuple[float, Any]] = {}

    @classmethod
    def for_bucket(cls, bucket: str, ttl: float = 30.0) -> S3BankStore:
        """A store on ``bucket`` alone (tools that know no other resource)."""
        return cls(Settings(table_name="", bank_bucket=bucket, history_stream="", history_bucket=""), ttl)

    def _get_json(self, key: str, what: str) -> Any:
        try:
            body = with_retries(lambda: client("s3").get_object(Bucket=self.bucket, Key=key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"{what} not found") from exc
            raise
        return json.loads(body)

    def _cached(self, key: str, what: str) -> Any:
        hit = self._small.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        value = self._get_json(key, what)
        self._small[key] = (time.monotonic(), value)
        return value

    def bank(self, bank_id: str, version: int) -> ItemBank:
        key = (bank_id, version)
        bank = self._banks.get(key)
        if bank is None:
            raw = self._get_json(f"banks/{bank_id}/v{version}.json", f"bank {bank_id} v{version}")
            bank = self._banks[key] = ItemBank.model_validate(raw)
            _ = bank.engine  # build the arrays once, outside the per-answer path
        return bank

    def current_version(self, bank_id: str) -> int:
        return int(self._cached(f"banks/{bank_id}/current.json", f"bank {bank_id}")["version"])

    def test(self, test_id: str) -> TestDefinition:
        return TestDefinition.model_validate(self._cached(f"tests/{test_id}.json", f"test {test_id}"))

    def policy(self, test_id: str, version: int) -> TestPolicy:
        """A published policy version (``tests/{test_id}/policy/v{version}.json``), cached for the
        life of the process: a published version never changes."""
        key = (test_id, version)
        policy = self._policies.get(key)
        if policy is None:
            raw = self._get_json(f"tests/{test_id}/policy/v{version}.json", f"policy v{version} of test {test_id}")
            policy = self._policies[key] = TestPolicy.model_validate(raw)
        return policy

    def publish(self, bank: ItemBank, make_current: bool = True) -> None:
        """Write a bank version (immutable) and, optionally, move the pointer to it."""
        s3 = client("s3")
        s3.put_object(Bucket=self.bucket, Key=f"banks/{bank.bank_id}/v{bank.version}.json",
                      Body=bank.model_dump_json(exclude_none=True).encode(), ContentType="application/json")
        if make_current:
            s3.put_object(Bucket=self.bucket, Key=f"banks/{bank.bank_id}/current.json",
                          Body=json.dumps({"version": bank.version}).encode(), ContentType="application/json")

    def put_media(self, bank_id: str, folder: Path) -> int:
        """Upload a bank's media folder (``BANK.media/``): ``<path>`` to
        ``banks/{bank_id}/media/<path>``, shared by the bank's versions (a calibrated version
        refers to the same files). Returns how many files were written."""
        if not folder.is_dir():
            return 0
        s3 = client("s3")
        written = 0
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                rel = path.relative_to(folder).as_posix()
                s3.put_object(Bucket=self.bucket, Key=f"banks/{bank_id}/media/{rel}", Body=path.read_bytes(),
                              ContentType=media_type(rel))
                written += 1
        return written

    def put_test(self, test: TestDefinition) -> TestDefinition:
        """Write a test definition. Its policy is published as a new immutable version when it
        differs from the current definition's (sessions refer to the version they started on);
        returns the definition as written, with its ``policy_version``."""
        try:
            last: TestDefinition | None = TestDefinition.model_validate(
                self._get_json(f"tests/{test.test_id}.json", f"test {test.test_id}"))
        except NotFound:
            last = None
        if last is not None and last.policy_version is not None and last.policy == test.policy:
            version = last.policy_version
        else:
            version = (last.policy_version or 0) + 1 if last is not None else 1
            client("s3").put_object(Bucket=self.bucket, Key=f"tests/{test.test_id}/policy/v{version}.json",
                                    Body=test.policy.model_dump_json().encode(), ContentType="application/json")
        written = test.model_copy(update={"policy_version": version})
        client("s3").put_object(Bucket=self.bucket, Key=f"tests/{test.test_id}.json",
                                Body=written.model_dump_json().encode(), ContentType="application/json")
        self._small.pop(f"tests/{test.test_id}.json", None)
        return written


class S3Objects:
    """An S3 bucket as an :class:`~irtcat.domain.ports.ObjectStore` (``get`` raises KeyError
    for a missing key)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def get(self, key: str) -> bytes:
        try:
            return bytes(with_retries(lambda: client("s3").get_object(Bucket=self.bucket, Key=key))["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(key) from None
            raise

    def put(self, key: str, data: bytes) -> None:
        with_retries(lambda: client("s3").put_object(Bucket=self.bucket, Key=key, Body=data))

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)


class FirehoseHistory:
    """History records as newline-delimited JSON into the Firehose delivery stream; groups
    records into their own stream (``GROUPS_STREAM``: the bucket's ``groups/`` prefix, which only
    the analytics role reads)."""

    def __init__(self, settings: Settings) -> None:
        self.stream = settings.history_stream
        self.groups_stream = os.environ.get("GROUPS_STREAM", "")

    def put(self, records: list[HistoryRecord]) -> None:
        groups = [r for r in records if r.record_type == "groups"]
        if groups:
            if not self.groups_stream:  # never into the history, never dropped: the batch is retried
                raise RuntimeError("group variables to ship but GROUPS_STREAM is not set")
            self._put(self.groups_stream, groups)
        self._put(self.stream, [r for r in records if r.record_type != "groups"])

    def _put(self, stream: str, records: list[HistoryRecord]) -> None:
        if not records:
            return
        pending = [{"Data": (r.model_dump_json(exclude_none=r.record_type == "groups") + "\n").encode()}
                   for r in records]
        for k in range(6):
            resp = with_retries(lambda batch=pending: client("firehose").put_record_batch(  # type: ignore[misc]
                DeliveryStreamName=stream, Records=batch))
            if not resp.get("FailedPutCount"):
                return
            pending = [rec for rec, res in zip(pending, resp["RequestResponses"], strict=True)
                       if res.get("ErrorCode")]
            time.sleep(random.uniform(0, 0.05 * 2**k))
        # never silently: the Lambda fails, Step Functions retries, and the commit is idempotent
        raise RuntimeError(f"{len(pending)} history record(s) not accepted by Firehose")


class KinesisAnswers:
    """Answer events onto the stream, keyed by session so one session stays on one shard."""

    def __init__(self, stream_name: str) -> None:
        self.stream = stream_name

    def publish(self, event: AnswerEvent) -> None:
        data = event.model_dump_json().encode()
        with_retries(lambda: client("kinesis").put_record(StreamName=self.stream, Data=data,
                                                          PartitionKey=event.session_id))


class S3MediaLinks:
    """Short-lived signed links to a bank's media (``banks/{bank_id}/media/<path>``): what the
    tablet loads an item's pictures and sounds from (docs/items.md)."""

    EXPIRES_SECONDS = 900

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.bank_bucket

    def url(self, bank_id: str, path: str) -> str:
        return str(client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": f"banks/{bank_id}/media/{path}"},
            ExpiresIn=self.EXPIRES_SECONDS))


class S3Quarantine:
    """Rejected raw events at ``quarantine/dt=YYYY-MM-DD/{hash}.json`` for listing and replay."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.history_bucket

    def put(self, raw: str, reason: str, source: dict[str, object]) -> str:
        now = datetime.now(UTC)
        digest = hashlib.sha256(raw.encode()).hexdigest()[:24]
        key = f"quarantine/dt={now:%Y-%m-%d}/{digest}.json"
        body = json.dumps({"reason": reason, "raw": raw, "source": source,
                           "quarantined_at": now.isoformat()}).encode()
        with_retries(lambda: client("s3").put_object(Bucket=self.bucket, Key=key, Body=body,
                                                     ContentType="application/json"))
        return key


class CognitoAccounts:
    """Student and teacher accounts in the stack's user pool; sign-in for scripts and tests.

    The user name is the opaque id (the student id the sessions carry); no other attribute is
    stored. Accounts get a permanent password at once (schools hand them out), and teachers
    join the ``teachers`` group.
    """

    def __init__(self, user_pool_id: str, client_id: str) -> None:
        self.pool = user_pool_id
        self.client_id = client_id

    def provision(self, user_id: str, password: str, teacher: bool = False) -> None:
        idp = client("cognito-idp")
        # provisioning is idempotent: an existing account gets its password (re)set below
        with contextlib.suppress(idp.exceptions.UsernameExistsException):
            idp.admin_create_user(UserPoolId=self.pool, Username=user_id, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=self.pool, Username=user_id, Password=password, Permanent=True)
        if teacher:
            from ..domain.access import TEACHERS_GROUP

            idp.admin_add_user_to_group(UserPoolId=self.pool, Username=user_id, GroupName=TEACHERS_GROUP)

    def sign_in(self, user_id: str, password: str) -> str:
        """The ID token for ``Authorization`` headers (USER_PASSWORD_AUTH)."""
        resp = client("cognito-idp").initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user_id, "PASSWORD": password})
        return str(resp["AuthenticationResult"]["IdToken"])
