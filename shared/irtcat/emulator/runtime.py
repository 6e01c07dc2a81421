"""The local stack in one object: emulator + resources from the template + Pipe stand-in."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..adapters.aws import CognitoAccounts

from .auth import JwtAuthorizer
from .containers import ContainerPool
from .event_sources import StreamPoller
from .function import FunctionSpec, InvokeResult, Runner, common_environment
from .journal import Checkpoints, Replayed
from .pipe import PipePoller, PipeSettings
from .server import EmulatorServer
from .stack import LocalStack, deploy
from .template import REGION
from .zygote import prestart as prestart_zygote


def project_root() -> Path:
    """The checkout holding template.yaml (the package lives in ``shared/irtcat``)."""
    env = os.environ.get("IRTCAT_PROJECT_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file():
            return parent
    return Path.cwd()


class StateMismatch(RuntimeError):
    """A data folder holds the state of a stack with other resources or parameters."""


def _check_same_stack(saved: Path, outputs: dict[str, Any], parameters: dict[str, str]) -> None:
    """The journal in a data folder replays into the stack that wrote it: refuse another one."""
    current = {k: str(v) for k, v in outputs.items() if "://" not in str(v)}  # URLs carry this start's port
    current.update({f"parameter {k}": v for k, v in parameters.items()})
    if saved.exists():
        before = json.loads(saved.read_text())
        changed = sorted(k for k in set(before) | set(current) if before.get(k) != current.get(k))
        if changed:
            raise StateMismatch(f"{saved.parent} holds the state of another stack ({', '.join(changed)} "
                                f"differ); start it as it was, or with --fresh, or use another --data-dir")
    else:
        saved.write_text(json.dumps(current, indent=2))


def _close_runners(runners: dict[str, Runner]) -> None:
    for runner in runners.values():
        runner.close()


# a session's first calls: a tablet starts a session, then reads it
_FIRST_CALLED = ("StartSessionFunction", "GetSessionFunction")


def _warm_order(pool: ContainerPool) -> tuple[int, str]:
    logical_id = pool.spec.logical_id
    if logical_id in _FIRST_CALLED:
        return (0, str(_FIRST_CALLED.index(logical_id)))
    return (1, logical_id)


def _is_calibration(spec: FunctionSpec) -> bool:
    return spec.logical_id.startswith("Calibration")


def warm_up(pools: list[ContainerPool]) -> threading.Event:
    """Warm one container of each pool, in order, in a background thread; the event is set when
    all have started (or failed to). Only one per pool: extra containers started ahead would
    compete with the first sessions for the cores."""
    warm = threading.Event()

    def run() -> None:
        try:
            for pool in pools:
                pool.warm(wait=True)
        finally:
            warm.set()

    threading.Thread(target=run, name="warm-up", daemon=True).start()
    return warm


@dataclass
class LocalRuntime:
    """A running local stack. Use :meth:`up` (or ``with LocalRuntime.up() as rt``)."""

    server: EmulatorServer
    stack: LocalStack
    pipe: PipePoller
    started_seconds: float
    api: Any = None  # the local HTTP API (waitress server), when started
    api_url: str | None = None
    authorizer: JwtAuthorizer | None = None  # the HTTP API's JWT authorizer
    streams: list[StreamPoller] = field(default_factory=list)  # event source mappings on table streams
    data_dir: Path | None = None  # where state persists (None: memory only)
    replayed: Replayed | None = None  # what the start replayed from data_dir's journals
    _warm: threading.Event = field(default_factory=threading.Event, repr=False)
    _up_at: float = 0.0

    @classmethod
    def up(cls, root: str | Path | None = None, port: int = 0,
           parameters: dict[str, str] | None = None, stack_name: str = "irtcat-local",
           data_dir: Path | None = None, fsync: bool = False, host: str = "127.0.0.1") -> LocalRuntime:
        """Start the stack. With ``data_dir``, its state persists there (see :mod:`.journal`): a
        stack started on a folder holds what the last one on it held, however that one ended."""
        started = time.perf_counter()
        os.environ["AWS_DEFAULT_REGION"] = REGION
        prestart_zygote()  # its imports overlap the emulator's start
        runners: dict[str, Runner] = {}
        server = EmulatorServer(runners, port=port, host=host)
        server.start()
        try:
            stack = deploy(root or project_root(), stack_name=stack_name, parameters=parameters)
            replayed = None
            if data_dir is not None:
                data_dir.mkdir(parents=True, exist_ok=True)
                _check_same_stack(data_dir / "stack.json", stack.outputs(), parameters or {})
                replayed = server.persist(data_dir, fsync=fsync)
            checkpoints = Checkpoints(data_dir / "checkpoints.json" if data_dir is not None else None)
            # what every function sets alike is this process's too (the demo's and the tests' clients)
            os.environ.update(common_environment(list(stack.functions.values())) or {})
            pools = {name: ContainerPool(spec) for name, spec in stack.functions.items()}
            stack.runners.update(pools)
            runners.update(pools)
            # one warm container per function, started in the background one after another (so
            # they do not starve the rest of the start-up of the machine's cores), a session's
            # first calls first; a function invoked before its turn starts its own (see
            # containers.py). The calibration functions start when a calibration first runs:
            # warming them would only take the cores from the first sessions.
            warm = warm_up(sorted((pool for pool in pools.values() if not _is_calibration(pool.spec)),
                                  key=_warm_order))
            pipes = stack.resources_of("AWS::Pipes::Pipe")
            if len(pipes) != 1:
                raise ValueError("the template must declare exactly one AWS::Pipes::Pipe")
            (pipe_id, pipe_res), = pipes.items()
            props = stack.resolver.resolve(pipe_res["Properties"])
            stream_id = next(k for k, v in stack.resources_of("AWS::Kinesis::Stream").items())
            dlq_arn = props.get("SourceParameters", {}).get("KinesisStreamParameters", {}).get(
                "DeadLetterConfig", {}).get("Arn")
            dlq_url = None
            for qid in stack.resources_of("AWS::SQS::Queue"):
                if stack.attr(qid, "Arn") == dlq_arn:
                    dlq_url = stack.name(qid)
            settings = PipeSettings.from_template(props, stack.name(stream_id), dlq_url)
            pipe = PipePoller(settings, checkpoints=checkpoints)
            pipe.start()
            streams = [StreamPoller(mapping, checkpoints=checkpoints) for mapping in stack.stream_mappings]
            for poller in streams:
                poller.start()
        except BaseException:
            _close_runners(runners)
            server.stop()
            raise
        del pipe_id
        from .template import load_template

        authorizer = JwtAuthorizer.from_stack(stack, load_template(stack.root / "template.yaml"))
        return cls(server, stack, pipe, time.perf_counter() - started, authorizer=authorizer,
                   streams=streams, data_dir=data_dir, replayed=replayed, _warm=warm, _up_at=started)

    def wait_warm(self, timeout: float = 60.0) -> float:
        """Wait until every per-session and per-answer function has a started container; the
        seconds from the start of :meth:`up` until then."""
        self._warm.wait(timeout)
        return time.perf_counter() - self._up_at

    def start_api(self, port: int = 3000, host: str = "127.0.0.1") -> str:
        """Serve the template's HTTP API routes (and web/) on ``host:port`` (0: any free port)."""
        import threading

        from waitress.server import create_server

        from .api import LocalHttpApi, http_api_routes
        from .template import load_template

        routes, cors = http_api_routes(load_template(self.stack.root / "template.yaml"))
        bound = [(m, p, self.function(fn)) for m, p, fn in routes]
        web = self.stack.root / "web"
        outputs = self.stack.outputs()
        web_config = {"region": REGION, "cognitoEndpoint": self.endpoint,
                      "clientId": str(outputs.get("TabletClientId", ""))}
        app = LocalHttpApi(bound, cors, web if web.is_dir() else None, self.authorizer, web_config)
        self.api = create_server(app, host=host, port=port, threads=16, ident="irtcat-local-api")
        threading.Thread(target=self.api.run, name="local-api", daemon=True).start()
        self.api_url = f"http://{host}:{self.api.effective_port}"
        return self.api_url

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()

    def down(self) -> None:
        self.pipe.stop()
        for poller in self.streams:
            poller.stop()
        _close_runners(self.stack.runners)
        if self.api is not None:
            self.api.close()
            self.api.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        self.server.stop()

    def crash(self) -> None:
        """End the stack as ``kill -9`` would, for the chaos run's restart: every container and
        the emulator killed, the pollers told to stop without waiting for anything in flight
        (what they were doing dies with the old ports)."""
        self.pipe.abandon()
        for poller in self.streams:
            poller.abandon()
        for runner in self.stack.runners.values():
            if isinstance(runner, ContainerPool):
                runner.kill_all()
        if self.api is not None:
            self.api.close()
            self.api.task_dispatcher.shutdown(cancel_pending=True, timeout=0.1)
        self.server.kill()

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def function(self, logical_id: str) -> Runner:
        return self.stack.function_by_logical_id(logical_id)

    def accounts(self) -> CognitoAccounts:
        """The stack's user pool: provision students and teachers, sign in."""
        from ..adapters.aws import CognitoAccounts

        outputs = self.stack.outputs()
        return CognitoAccounts(str(outputs["UserPoolId"]), str(outputs["TabletClientId"]))

    def invoke(self, logical_id: str, event: Any) -> InvokeResult:
        return self.function(logical_id).invoke(event)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until every answer put on the stream before the call is processed and every
        session write's outbox is shipped: first the Pipe has delivered everything and read its
        shards empty, then each table-stream poller has read its shards empty after that (so
        it has seen the last write). Answers put after the call may or may not be included."""
        deadline = time.monotonic() + timeout
        asked = time.monotonic()
        while not self.pipe.quiet_since(asked):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        processed = time.monotonic()  # no session write of those answers comes after this
        while not all(p.quiet_since(processed) for p in self.streams):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
