"""Wiring shared by the Lambda handlers: Powertools objects and adapters, built once per
container (module import), never per invocation.

Cold start matters on the per-answer path, so its handlers use Powertools' Logger and Metrics
and validate with the domain's pydantic models directly (what Powertools' ``event_parser`` does,
without importing the models of every AWS event source, a large part of a cold start). The
X-Ray SDK behind Powertools' Tracer is slow to import too; the per-answer functions are traced by Lambda's and
Step Functions' active tracing instead, and the API handlers use the Tracer (see README).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

    from .aws import (
        DynamoSessions,
        DynamoStudents,
        FirehoseHistory,
        KinesisAnswers,
        S3BankStore,
        S3MediaLinks,
        S3Objects,
        S3Quarantine,
    )


# a read that records no metric is normal (a poll, a duplicate): not worth a warning on stderr
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def powertools(service: str) -> tuple[Logger, Metrics]:
    """Logger and Metrics (EMF) for one function; namespace from the environment."""
    return Logger(service=service), Metrics(service=service)


def tracer(service: str) -> Tracer:
    """Powertools' Tracer (imports the X-Ray SDK: API handlers only)."""
    from aws_lambda_powertools.tracing import Tracer

    return Tracer(service=service)


@dataclass(frozen=True)
class Adapters:
    sessions: DynamoSessions
    students: DynamoStudents
    banks: S3BankStore
    history: FirehoseHistory
    quarantine: S3Quarantine
    media: S3MediaLinks


def reset() -> None:
    """Forget the wiring and every cached client and bank (tests, a fresh local stack)."""
    from .aws import reset_caches

    adapters.cache_clear()
    answer_stream.cache_clear()
    calibration_stores.cache_clear()
    reset_caches()


@cache
def answer_stream() -> KinesisAnswers:
    """The answer stream, named by ``ANSWER_STREAM`` (PublishAnswer only)."""
    import os

    from .aws import KinesisAnswers

    name = os.environ.get("ANSWER_STREAM")
    if not name:
        raise RuntimeError("environment variable ANSWER_STREAM is not set")
    return KinesisAnswers(name)


@cache
def adapters() -> Adapters:
    """The AWS adapters for this container, configured from the environment."""
    from .aws import (
        DynamoSessions,
        DynamoStudents,
        FirehoseHistory,
        S3BankStore,
        S3MediaLinks,
        S3Quarantine,
        Settings,
    )

    settings = Settings.from_env()
    banks = S3BankStore(settings)
    return Adapters(
        sessions=DynamoSessions(settings, banks), students=DynamoStudents(settings),
        banks=banks, history=FirehoseHistory(settings), quarantine=S3Quarantine(settings),
        media=S3MediaLinks(settings),
    )


@dataclass(frozen=True)
class CalibrationStores:
    banks: S3BankStore
    history: S3Objects
    work: S3Objects


@cache
def calibration_stores() -> CalibrationStores:
    """The calibration job's storage: the banks (pointer read fresh: publishing compares it),
    the history bucket, and the job's working storage in the bank bucket."""
    from .aws import S3BankStore, S3Objects, Settings

    settings = Settings.from_env()
    return CalibrationStores(S3BankStore(settings, ttl=0.0), S3Objects(settings.history_bucket),
                             S3Objects(settings.bank_bucket))
