"""``irtcat local demo``: simulated tablets take adaptive tests through the whole local pipeline.

Each tablet signs in to the stack's user pool (the emulator's Cognito) and sends its token
through the HTTP API's JWT authorizer, starts a session through the API handler, answers the item it is served (the
simulated student answers correctly with the IRT probability at their true theta), publishes the
answer to Kinesis, and polls the session until the next item is ready, as a tablet would. Some
answers are published twice on purpose (a tablet's resend) to show they change nothing.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np

from ..adapters.aws import DynamoSessions, DynamoStudents, S3BankStore, Settings
from ..capacity.model import ANSWER_CHAIN
from ..domain.bank import ItemBank
from ..domain.blueprint import Blueprint
from ..domain.generate import generate_bank
from ..domain.history import HistoryRecord
from ..domain.policy import StoppingPolicy, TestDefinition, TestPolicy
from ..domain.scoring import simulated_answer
from ..domain.session import SessionState
from ..emulator.api import get_session_event, start_session_event
from ..emulator.runtime import LocalRuntime
from ..emulator.template import REGION
from . import DEFAULT_TABLETS
from .export import export_history
from .table_meter import mean_session_item_bytes, outbox_event_ids, write_units_per_answer

TEST_ID = "demo-math"


@dataclass
class TabletResult:
    student_id: str
    true_theta: float
    session_id: str | None = None
    published: int = 0
    published_bytes: int = 0
    unique: int = 0
    reordered: int = 0
    garbage: int = 0
    latencies: list[float] = field(default_factory=list)
    applied_at: list[float] = field(default_factory=list)  # perf_counter() when the tablet saw it
    polls: int = 0
    final: dict[str, Any] | None = None
    error: str | None = None


def settings_of(rt: LocalRuntime) -> Settings:
    env = rt.function("UpdateThetaFunction").spec.environment
    return Settings(env["TABLE_NAME"], env["BANK_BUCKET"], env["HISTORY_STREAM"], env["HISTORY_BUCKET"])


def load_demo_bank(rt: LocalRuntime, items: int = 500, pretest: int = 0, seed: int = 7,
                   policy: TestPolicy | None = None, models: list[str] | None = None) -> ItemBank:
    """Generate a bank (with displayable content; its items' models cycling through ``models``,
    e.g. 3PL, GRM, GPCM), publish it and the demo test definition."""
    bank = generate_bank(items, "3PL", seed=seed, bank_id="demo-math", pretest=pretest,
                         content_areas=["number", "operations"])
    if models:
        from ..domain.generate import with_partial_credit

        bank = with_partial_credit(bank, models, seed)
    if policy is None:
        positions = [3, 8, 13][: min(pretest, 3)] if pretest else []
        policy = TestPolicy(pretest_positions=positions, selection="shadow", blueprint=demo_blueprint(bank),
                            stopping=StoppingPolicy(min_items=30, max_items=30), report_groups=["language"])
    if policy.sympson_hetter:
        bank = exposure_controlled(bank, policy)
    store = S3BankStore(settings_of(rt))
    store.publish(bank)
    store.put_test(TestDefinition(test_id=TEST_ID, bank_id=bank.bank_id, policy=policy))
    return bank


# an imported bank runs a test of at most this many items, and needs at least the minimum
IMPORTED_TEST_ITEMS = (5, 20)


def load_imported_bank(rt: LocalRuntime, bank_path: Path) -> ItemBank:
    """Publish an imported bank (``irtcat bank import``), its media and a test on it: fixed
    length, as long as its operational items allow (at most 20); its pretest items seeded at
    positions 2, 5 and 8. ValueError with the reason when too few items are operational."""
    from ..importer.build import media_dir

    bank = ItemBank.load(bank_path)
    operational = sum(1 for it in bank.items if it.status == "operational")
    low, high = IMPORTED_TEST_ITEMS
    if operational < low:
        raise ValueError(f"bank {bank.bank_id} has {operational} operational item(s): a test needs at least {low} "
                         "(give parameters with --parameters; items without them come in as pretest)")
    pretest = sum(1 for it in bank.items if it.status == "pretest")
    length = min(high, operational)
    policy = TestPolicy(pretest_positions=[2, 5, 8][: min(pretest, 3)],
                        stopping=StoppingPolicy(min_items=length, max_items=length))
    if length / operational > policy.max_exposure / 2:
        # a bank this small gives most items to every student: no cap can hold, and a lottery
        # would only end tests early (the bank's exposure is then what it is, and is reported)
        policy = policy.model_copy(update={"sympson_hetter": False, "max_exposure": 1.0})
    if policy.sympson_hetter:
        bank = exposure_controlled(bank, policy)
    store = S3BankStore(settings_of(rt))
    store.put_media(bank.bank_id, media_dir(bank_path))
    store.publish(bank)
    store.put_test(TestDefinition(test_id=TEST_ID, bank_id=bank.bank_id, policy=policy))
    return bank


def demo_blueprint(bank: ItemBank, length: int = 30) -> Blueprint:
    """The demo test's blueprint: both content areas within bounds, a few numeric-entry items,
    and the four most informative items at theta 0 as two pairs of enemies (so that the rule
    has work to do)."""
    info = bank.engine.information(np.zeros(1))[0]
    top = [bank.engine.item_ids[j] for j in np.argsort(-info)[:4]]
    return Blueprint.model_validate({
        "length": length,
        "constraints": [{"attribute": "content_area", "value": "number", "min": 13, "max": 17},
                        {"attribute": "item_type", "value": "numeric", "min": 2}],
        "enemies": [top[:2], top[2:]]})


def exposure_controlled(bank: ItemBank, policy: TestPolicy) -> ItemBank:
    """``bank`` with Sympson-Hetter parameters for ``policy``: computed once per bank and policy
    and kept under ``.irtcat/cache/`` (the simulation takes seconds; the demo bank is the same
    every run)."""
    import hashlib

    from ..domain.exposure import METHOD, with_exposure_control

    digest = hashlib.sha256((METHOD + bank.model_dump_json() + policy.model_dump_json()).encode()).hexdigest()[:16]
    cached = Path(".irtcat") / "cache" / f"exposure-{digest}.json"
    if cached.exists():
        try:
            return ItemBank.model_validate_json(cached.read_text())
        except ValueError:
            pass  # an unreadable cache is recomputed
    # the demo's shadow policy: shorter simulations than a programme would run (a demo bank,
    # computed once per bank and policy and cached; every demo-based test pays it once)
    controlled, _ = with_exposure_control(bank, policy, examinees=1000, rounds=6, shadow_examinees=150)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(controlled.model_dump_json())
    return controlled


def _invoked(rt: LocalRuntime, logical_id: str, event: dict[str, Any]) -> Any:
    """An API function's result; a failed invocation (a dead container, a stack going down)
    raises, so that :meth:`LiveRuntime.steady` can tell whether to try again."""
    out = rt.invoke(logical_id, event)
    if out.error:
        raise RuntimeError(f"{logical_id}: {out.payload}")
    return out


class LiveRuntime:
    """The stack the tablets talk to, which the chaos run swaps for a restarted one midway. A
    tablet's call that fails because the stack died under it is made again on the new one, as a
    real tablet retries when the backend comes back."""

    def __init__(self, rt: LocalRuntime) -> None:
        self.rt = rt
        self.generation = 0
        self.ready = threading.Event()
        self.ready.set()
        self.restart_seconds: list[float] = []

    def restart(self, up: Callable[[], LocalRuntime]) -> None:
        """Kill the stack as ``kill -9`` would and start ``up()`` in its place."""
        self.ready.clear()
        started = time.perf_counter()
        try:
            self.rt.crash()
            self.rt = up()
            self.generation += 1
        finally:
            self.restart_seconds.append(time.perf_counter() - started)
            self.ready.set()

    def steady(self, call: Callable[[], Any], patience_s: float = 300.0) -> Any:
        """``call()``, made again if the stack restarted while it ran (any other failure is raised)."""
        deadline = time.monotonic() + patience_s
        while True:
            self.ready.wait(patience_s)
            generation = self.generation
            try:
                return call()
            except Exception:
                restarted = generation != self.generation or not self.ready.is_set()
                if not restarted or time.monotonic() > deadline:
                    raise


class Tablet:
    """One simulated student on one tablet."""

    def __init__(self, rt: LiveRuntime, bank: ItemBank, stream: str, student_id: str, true_theta: float,
                 rng: random.Random, duplicate_rate: float, password: str, poll_timeout: float = 120.0,
                 first_poll: float = 0.3, reorder_rate: float = 0.0, garbage_rate: float = 0.0) -> None:
        self.live, self.bank, self.stream = rt, bank, stream
        self.password = password
        self.claims: dict[str, str] | None = None
        self.result = TabletResult(student_id, true_theta)
        self.rng = rng
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.garbage_rate = garbage_rate
        self.poll_timeout = poll_timeout
        self.first_poll = first_poll
        self._kinesis: tuple[int, Any] | None = None  # (stack generation, client)

    @property
    def rt(self) -> LocalRuntime:
        return self.live.rt

    @property
    def kinesis(self) -> Any:
        """A Kinesis client of the stack now up (a restarted stack has new endpoints)."""
        if self._kinesis is None or self._kinesis[0] != self.live.generation:
            self._kinesis = (self.live.generation, boto3.client("kinesis", region_name=REGION))
        return self._kinesis[1]

    def sign_in(self) -> None:
        """Sign in, and pass the token through the API's authorizer as API Gateway would."""
        if self.rt.authorizer is None:
            raise RuntimeError("the template's HTTP API declares no JWT authorizer")
        token = self.rt.accounts().sign_in(self.result.student_id, self.password)
        self.claims = self.rt.authorizer.claims({"authorization": f"Bearer {token}"})

    def _api(self, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        out = self.live.steady(lambda: _invoked(self.rt, logical_id, event))
        body = json.loads(out.payload["body"])
        if out.payload["statusCode"] >= 300:
            raise RuntimeError(f"{logical_id}: HTTP {out.payload['statusCode']}: {body}")
        return dict(body)

    def run(self, on_answer: Callable[[], None]) -> TabletResult:
        res = self.result
        try:
            self.sign_in()
            view = self._api("StartSessionFunction", start_session_event(res.student_id, TEST_ID, claims=self.claims))
            res.session_id = view["session_id"]
            previous: bytes | None = None
            while view["status"] == "active":
                item = view["item"]
                # the simulated student recognises an option by its text (the tablet itself
                # never learns which option is the key or what an option earns)
                shown = [(o["id"], o["text"]) for o in item.get("options") or []]
                by_response = {r["id"]: [(o["id"], o["text"]) for o in r.get("options") or []]
                               for r in item.get("responses") or []}
                choice = simulated_answer(self.bank, item["item_id"], res.true_theta, shown,
                                          np.random.default_rng(self.rng.randrange(2**32)), by_response)
                event = {
                    # version 2 carries one option id or one number; a list or blanks need 3
                    "schema_version": 3 if isinstance(choice, list | dict) else 2,
                    "event_id": str(uuid.uuid4()), "session_id": res.session_id,
                    "student_id": res.student_id, "item_id": item["item_id"], "seq": item["seq"],
                    "choice": choice, "answered_at": datetime.now(UTC).isoformat(),
                    "response_time_ms": self.rng.randint(2000, 30000),
                }
                data = json.dumps(event).encode()
                if self.rng.random() < self.garbage_rate:
                    self._put(self._garbage(event))
                    res.garbage += 1
                sent = time.perf_counter()
                self._put(data)
                res.unique += 1
                if self.rng.random() < self.duplicate_rate:
                    # a tablet's resend: the same event, or the same answer under a new event_id
                    again = data if self.rng.random() < 0.5 else json.dumps(
                        {**event, "event_id": str(uuid.uuid4())}).encode()
                    self._put(again)
                if previous is not None and self.rng.random() < self.reorder_rate:
                    self._put(previous)  # the previous answer again, now behind this one
                    res.reordered += 1
                previous = data
                view = self._wait_for(view["answered"] + 1)
                res.latencies.append(time.perf_counter() - sent)
                res.applied_at.append(time.perf_counter())
                on_answer()
            res.final = view.get("result")
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        return res

    def _put(self, data: bytes) -> None:
        self.live.steady(lambda: self.kinesis.put_record(StreamName=self.stream, Data=data,
                                                          PartitionKey=self.result.session_id or "-"))
        self.result.published += 1
        self.result.published_bytes += len(data)

    def _garbage(self, event: dict[str, Any]) -> bytes:
        """A record that can never be applied, of one of the kinds the pipeline must reject."""
        kind = self.rng.choice(["json", "schema", "old_contract", "bad_choice", "unknown_session", "wrong_student",
                                "oversized", "huge", "binary", "deep"])
        nonce = str(uuid.uuid4())
        fresh = {**event, "event_id": nonce}
        if kind == "json":
            return b'{"event_id": "' + nonce.encode() + b'", "seq": '
        if kind == "schema":
            return json.dumps({**fresh, "seq": 0}).encode()
        if kind == "old_contract":  # a tablet that scores itself (contract version 1)
            old = {k: v for k, v in fresh.items() if k != "choice"}
            return json.dumps({**old, "schema_version": 1, "response": 1}).encode()
        if kind == "bad_choice":
            return json.dumps({**fresh, "choice": "Z" if isinstance(fresh["choice"], str) else "A"}).encode()
        if kind == "unknown_session":
            return json.dumps({**fresh, "session_id": str(uuid.uuid4())}).encode()
        if kind == "wrong_student":
            return json.dumps({**fresh, "student_id": f"intruder-{self.rng.randint(0, 9999):04d}"}).encode()
        if kind == "huge":  # beyond a Step Functions input (256 KiB); Kinesis takes up to 1 MiB
            return json.dumps({**fresh, "padding": "x" * 300_000}).encode()
        if kind == "binary":
            return nonce.encode() + bytes(range(256)) * 4
        if kind == "deep":  # small, but nested beyond any JSON parser's recursion limit
            return b'{"event_id": "' + nonce.encode() + b'", "x": ' + b"[" * 1900 + b"]" * 1900 + b"}"
        return json.dumps({**fresh, "padding": "x" * 5000}).encode()

    def _wait_for(self, answered: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.poll_timeout
        # a tablet polls with backoff, not in a tight loop: every poll costs the backend a read
        delay = self.first_poll
        while time.monotonic() < deadline:
            time.sleep(delay)
            view = self._api("GetSessionFunction", get_session_event(self.result.session_id or "", claims=self.claims))
            self.result.polls += 1
            if view["answered"] >= answered or view["status"] != "active":
                return view
            delay = min(delay * 1.5, 1.5)
        raise TimeoutError(f"session {self.result.session_id}: answer {answered} not applied in time")


def _sessions(settings: Settings) -> dict[str, SessionState]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    sessions = DynamoSessions(settings, S3BankStore(settings))
    out: dict[str, SessionState] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=settings.table_name):
        for item in page["Items"]:
            if item["pk"]["S"].startswith("SESSION#"):
                state = sessions.state_of(item)
                out[state.session_id] = state
    return out


def demo_password() -> str:
    """A throwaway password for the demo's accounts (meets the pool's password policy)."""
    import secrets

    return f"Demo-{secrets.token_hex(8)}1a"


def run_demo(
    students: int = DEFAULT_TABLETS,
    seed: int = 1,
    items: int = 500,
    pretest: int = 0,
    duplicate_rate: float = 0.05,
    concurrency: int = 40,
    reorder_rate: float = 0.0,
    garbage_rate: float = 0.0,
    report_dir: str | Path = "report",
    shards: int = 2,
    batch_size: int = 10,
    progress: Callable[[int, int], None] | None = None,
    rt: LocalRuntime | LiveRuntime | None = None,
    parallelization: int = 1,
    before_drain: Callable[[], None] | None = None,
    models: list[str] | None = None,
    bank_path: Path | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``report_dir/summary.json``).
    ``models`` (e.g. 3PL, GRM, GPCM) makes a mixed bank with partial-credit items;
    ``bank_path`` runs the tablets on an imported bank instead (:func:`load_imported_bank`)."""
    own = rt is None
    rt = rt or LocalRuntime.up(parameters={"StreamShardCount": str(shards), "PipeBatchSize": str(batch_size),
                                           "PipeParallelization": str(parallelization)})
    live = rt if isinstance(rt, LiveRuntime) else LiveRuntime(rt)
    try:
        return _run(live, students, seed, items, pretest, duplicate_rate, concurrency, Path(report_dir), progress,
                    reorder_rate, garbage_rate, before_drain, models, bank_path)
    finally:
        if own:
            live.rt.down()


SOAK_FAULTS = {"dynamodb": 0.02, "firehose": 0.02, "lambda": 0.005}


def run_soak(sessions: int = 200, faults: dict[str, float] | None = None,
             report_dir: str | Path = "soak-report", seed: int = 3, garbage_rate: float = 0.01) -> dict[str, Any]:
    """The reliability soak: ``sessions`` concurrent tablets through the local pipeline; 10% of
    answers resent (half under a new event_id), 5% followed by the previous answer again (out
    of order), 1% preceded by a garbage record (bad JSON, schema violation, unknown session,
    wrong student, oversized), while a share of DynamoDB, Firehose and Lambda calls is
    throttled (``faults``, default ``SOAK_FAULTS``). What must hold: ``answers_lost`` == 0,
    ``answers_double_applied`` == 0, ``rejected`` == ``garbage_sent``."""
    rt = LocalRuntime.up(parameters={"StreamShardCount": "2", "PipeBatchSize": "10"})
    injector = rt.server.gateway.faults
    for service, rate in (faults if faults is not None else SOAK_FAULTS).items():
        injector.set(service, rate)
    try:
        summary = run_demo(students=sessions, seed=seed, concurrency=sessions, duplicate_rate=0.10,
                           reorder_rate=0.05, garbage_rate=garbage_rate, report_dir=report_dir, rt=rt)
        summary["faults_injected"] = injector.injected  # DynamoDB's and Kinesis' are counted in their process
    finally:
        rt.down()
    return summary


# the functions behind the stream: a tablet's own API calls would need a retry of their own
PIPELINE_FUNCTIONS = (*ANSWER_CHAIN, "ScreenBatchFunction", "ShipHistoryFunction")


def run_chaos(sessions: int = 60, seed: int = 5, report_dir: str | Path = "chaos-report",
              kill_every: tuple[float, float] = (0.3, 0.7), garbage_rate: float = 0.03,
              restart: bool = True) -> dict[str, Any]:
    """The chaos run: the soak's tablets, resends, reorders and faults, poison records of every
    kind (``garbage_rate``), a pipeline Lambda container killed with SIGKILL every
    ``kill_every`` seconds (uniform) while the tablets answer, and (``restart``) the whole stack
    killed and started again on its data folder a third of the way through (once ten answers
    per session are applied). What must hold: ``answers_lost`` == 0,
    ``answers_double_applied`` == 0, every applied answer in the history, ``rejected`` ==
    ``garbage_sent``."""
    import random
    import shutil

    from ..emulator.containers import ContainerPool

    state_dir = Path(report_dir).resolve() / "state"
    shutil.rmtree(state_dir, ignore_errors=True)
    parameters = {"StreamShardCount": "2", "PipeBatchSize": "10"}

    def up() -> LocalRuntime:
        rt = LocalRuntime.up(parameters=parameters, data_dir=state_dir)
        for service, rate in SOAK_FAULTS.items():
            rt.server.gateway.faults.set(service, rate)
        return rt

    live = LiveRuntime(up())
    rng = random.Random(seed)
    stop = threading.Event()
    kills: list[str] = []

    def storm() -> None:
        while not stop.wait(rng.uniform(*kill_every)):
            live.ready.wait()
            pools = [p for p in live.rt.stack.runners.values()
                     if isinstance(p, ContainerPool) and p.spec.logical_id in PIPELINE_FUNCTIONS]
            pool = rng.choice(pools)
            if pool.kill_one(rng.choice) is not None:
                kills.append(pool.spec.logical_id)

    restart_after = sessions * 10
    midway = threading.Event()

    def restarter() -> None:
        if midway.wait() and not stop.is_set():
            live.restart(up)

    def progress(applied: int, _: int) -> None:
        if restart and applied >= restart_after:
            midway.set()

    killer = threading.Thread(target=storm, name="chaos", daemon=True)
    restarts = threading.Thread(target=restarter, name="chaos-restart", daemon=True)
    try:
        killer.start()
        restarts.start()
        # the storm ends with the tablets: the drain and the export measure what the storm left
        summary = run_demo(students=sessions, seed=seed, concurrency=sessions, duplicate_rate=0.10,
                           reorder_rate=0.05, garbage_rate=garbage_rate, report_dir=report_dir, rt=live,
                           before_drain=stop.set, progress=progress)
        rt = live.rt
        summary["containers_killed"] = len(kills)
        summary["containers_killed_by_function"] = {f: kills.count(f) for f in sorted(set(kills))}
        summary["faults_injected"] = rt.server.gateway.faults.injected
        summary["restarts"] = len(live.restart_seconds)
        summary["restart_seconds"] = [round(x, 2) for x in live.restart_seconds]
        summary["changes_replayed"] = rt.replayed.requests if rt.replayed else 0
        summary["pipe_loop_errors"] = rt.pipe.stats.loop_errors
        summary["stream_loop_errors"] = sum(p.stats.loop_errors for p in rt.streams)
        if summary["history_missing"]:  # where the record was lost: before or after the table's stream
            in_stream = outbox_event_ids(rt)
            summary["history_missing_in_table_stream"] = [m[2] in in_stream for m in summary["history_missing"]]
    finally:
        stop.set()
        midway.set()
        live.ready.wait(300)
        live.rt.down()
    return summary


def _run(live: LiveRuntime, students: int, seed: int, items: int, pretest: int, duplicate_rate: float,
         concurrency: int, report_dir: Path, progress: Callable[[int, int], None] | None,
         reorder_rate: float = 0.0, garbage_rate: float = 0.0,
         before_drain: Callable[[], None] | None = None, models: list[str] | None = None,
         bank_path: Path | None = None) -> dict[str, Any]:
    rt = live.rt
    settings = settings_of(rt)
    bank = load_imported_bank(rt, bank_path) if bank_path else load_demo_bank(rt, items, pretest, seed, models=models)
    stream = rt.stack.outputs()["AnswerStreamName"]
    rng = np.random.default_rng(seed)
    thetas = rng.normal(0.0, 1.0, students)
    done = [0]
    lock = threading.Lock()

    def on_answer() -> None:
        with lock:
            done[0] += 1
            if progress:
                progress(done[0], 0)

    password = demo_password()
    accounts = rt.accounts()
    ids = [f"student-{k:04d}" for k in range(students)]
    profiles = DynamoStudents(settings)
    for k, student_id in enumerate(ids):
        accounts.provision(student_id, password)
        # a group variable the demo test reports, for the health page's DIF section
        profiles.set_groups(student_id, {"language": "es" if k % 3 == 2 else "en"})
    tablets = [Tablet(live, bank, stream, ids[k], float(thetas[k]), random.Random(seed * 100_003 + k),
                      duplicate_rate, password, reorder_rate=reorder_rate, garbage_rate=garbage_rate)
               for k in range(students)]
    # students arrive at a stack that is up and whose functions each have a started container
    # (the warm-up runs in the background from the start of `up`); the first call of each
    # container still pays its own first-call costs (clients, the bank), as on AWS
    warm_seconds = rt.wait_warm()
    calls_before, generation = call_counts(rt), live.generation
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, students))) as pool:
        results = list(pool.map(lambda t: t.run(on_answer), tablets))
    if before_drain is not None:
        before_drain()
    rt = live.rt  # the stack may have been restarted meanwhile
    answered = time.perf_counter()
    drained = rt.wait_idle(timeout=120)
    elapsed = time.perf_counter() - started
    calls_after = call_counts(rt) if live.generation == generation else None  # a restart resets them
    summary = summarise(rt, settings, bank, results, elapsed, report_dir, warm_seconds)
    if calls_after is not None and summary["answers_unique"]:
        # what one answer costs in AWS calls while the tablets run: the profile of irtcat capacity
        summary["calls_per_answer"] = {
            key: round((n - calls_before.get(key, 0)) / summary["answers_unique"], 4)
            for key, n in sorted(calls_after.items()) if n > calls_before.get(key, 0)}
    summary["drained"] = drained  # False: the history was exported before the pipeline was idle
    # from the last tablet's last answer seen applied to every put answer processed and shipped
    summary["drain_seconds"] = (started + elapsed - answered) if drained else None
    return summary


def call_counts(rt: LocalRuntime) -> dict[str, int]:
    """AWS requests per ``service:Operation`` and Lambda invocations (``lambda:Function``) the
    stack has served so far. The tablets here call their API functions directly, so API
    requests are not in it (``polls_per_answer`` counts the tablets' reads)."""
    gateway = rt.server.gateway
    return {**gateway.request_counts(), **{f"lambda:{name}": n for name, n in gateway.invocations.items()}}


def sustained_rate(applied_at: list[float], trim: float = 0.1) -> float | None:
    """Answers/s between the first and last ``trim`` of the answers seen applied: the pipeline's
    rate once every tablet is running, without the cold starts at the beginning and the last
    few tablets finishing alone at the end (``answers_per_second`` counts the whole run)."""
    times = sorted(applied_at)
    lo, hi = int(trim * len(times)), int((1 - trim) * len(times)) - 1
    if hi <= lo or times[hi] <= times[lo]:
        return None
    return (hi - lo) / (times[hi] - times[lo])


def summarise(rt: LocalRuntime, settings: Settings, bank: ItemBank, results: list[TabletResult],
              elapsed: float, report_dir: Path, warm_seconds: float | None = None) -> dict[str, Any]:
    """Check every answer against DynamoDB and the history; export the history; the summary."""
    sessions = _sessions(settings)
    report_dir.mkdir(parents=True, exist_ok=True)
    exported = export_history(settings.history_bucket, report_dir)
    lines = [line for f in exported["files"] for line in Path(f).read_text().splitlines() if line]
    records = [HistoryRecord.model_validate_json(line) for line in lines]
    # the history is at least once: a record delivered twice has the same event_id; two event_ids
    # applied at one (session, seq) would be an answer applied twice
    applied_in_history: dict[tuple[str, int], set[str | None]] = {}
    deliveries = 0
    for r in records:
        if r.record_type == "answer" and r.outcome == "applied" and r.session_id and r.seq:
            applied_in_history.setdefault((r.session_id, r.seq), set()).add(r.event_id)
            deliveries += 1
    unique = sum(r.unique for r in results)
    applied_state = sum(s.answered for s in sessions.values())
    history_unique = len(applied_in_history)
    missing = sorted((sid, x.seq, x.event_digest) for sid, state in sessions.items() for x in state.served
                     if x.response is not None and (sid, x.seq) not in applied_in_history)
    finished = [r for r in results if r.final is not None]
    errors = [r.error for r in results if r.error]
    thetas = np.array([r.final["theta"] for r in finished if r.final is not None])
    truth = np.array([r.true_theta for r in finished])
    latencies = sorted(x for r in results for x in r.latencies)
    stats = rt.pipe.stats
    summary: dict[str, Any] = {
        "sessions": len(results),
        "sessions_finished": len(finished),
        "answers_published": sum(r.published for r in results),
        "answers_unique": unique,
        "answers_applied": applied_state,
        "answers_in_history": history_unique,
        "history_duplicates": deliveries - sum(len(v) for v in applied_in_history.values()),
        "duplicates_acknowledged": sum(1 for r in records if r.outcome == "duplicate"),
        # a batch retried after a failure rejects its bad records again: the history is at least
        # once, so rejections are counted per distinct raw event
        "rejected": len({r.raw_event or r.event_id for r in records if r.outcome == "rejected"}),
        "rejection_records": sum(1 for r in records if r.outcome == "rejected"),
        "garbage_sent": sum(r.garbage for r in results),
        "reordered_sent": sum(r.reordered for r in results),
        "answers_double_applied": max(0, applied_state - unique) + sum(len(v) - 1 for v in applied_in_history.values()),
        "answers_lost": max(0, unique - applied_state) + max(0, applied_state - history_unique),
        # applied in state, no applied record in the history: (session_id, seq, event_id)
        "history_missing": [list(m) for m in missing[:20]],
        "executions": stats.executions_succeeded + stats.executions_failed,
        "executions_failed": stats.executions_failed,
        "dead_lettered": stats.dead_lettered,
        "mean_test_length": float(np.mean([s.scored_answered for s in sessions.values()])) if sessions else 0.0,
        "rmse": float(np.sqrt(np.mean((thetas - truth) ** 2))) if finished else None,
        "bias": float(np.mean(thetas - truth)) if finished else None,
        "answers_per_second": unique / elapsed if elapsed > 0 else 0.0,
        "sustained_answers_per_second": sustained_rate([t for r in results for t in r.applied_at]),
        "latency_p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "latency_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "polls_per_answer": sum(r.polls for r in results) / unique if unique else None,
        # the sizes AWS bills by (irtcat capacity): an answer on the stream, a history record,
        # a session's item in DynamoDB
        "answer_record_bytes": (sum(r.published_bytes for r in results) / max(1, sum(r.published for r in results))),
        "history_records_per_answer": len(records) / unique if unique else None,
        "history_record_bytes": sum(len(line.encode()) + 1 for line in lines) / len(lines) if lines else None,
        "session_item_bytes": mean_session_item_bytes(settings.table_name),
        **write_units_per_answer(settings.table_name, unique),
        "seconds": elapsed,
        "startup_seconds": rt.started_seconds,
        "warm_seconds": warm_seconds,  # from the start of `up` until every function had a container
        "tablet_errors": errors[:10],
        "report_dir": str(report_dir.resolve()),
        "history_partitions": exported["partitions"],
    }
    if exported["files"]:
        from ..analytics.health import build_health
        from ..analytics.report import build_report

        summary["health"] = build_health(report_dir, bank, report_dir)["html"]
        summary["dashboard"] = build_report(report_dir, report_dir)["dashboard"]  # links the health page
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
