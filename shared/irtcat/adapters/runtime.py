"""Wiring shared by the Lambda handlers: Powertools objects and adapters, built once per
container (module import), never per invocation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer

from .aws import (
    DynamoSessions,
    DynamoStudents,
    FirehoseHistory,
    S3BankStore,
    S3Quarantine,
    Settings,
)


def powertools(service: str) -> tuple[Logger, Tracer, Metrics]:
    """Logger, Tracer and Metrics (EMF) for one function; namespace from the environment."""
    return Logger(service=service), Tracer(service=service), Metrics(service=service)


@dataclass(frozen=True)
class Adapters:
    sessions: DynamoSessions
    students: DynamoStudents
    banks: S3BankStore
    history: FirehoseHistory
    quarantine: S3Quarantine


def reset() -> None:
    """Forget the wiring and every cached client and bank (tests, a fresh local stack)."""
    from .aws import reset_caches

    adapters.cache_clear()
    reset_caches()


@cache
def adapters() -> Adapters:
    """The AWS adapters for this container, configured from the environment."""
    settings = Settings.from_env()
    return Adapters(
        sessions=DynamoSessions(settings), students=DynamoStudents(settings),
        banks=S3BankStore(settings), history=FirehoseHistory(settings),
        quarantine=S3Quarantine(settings),
    )
