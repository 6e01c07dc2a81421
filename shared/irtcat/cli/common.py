"""What every ``irtcat`` command shares: its one error path (:class:`CliError`, exit status 2,
``irtcat: error: reason`` on stderr), its one JSON emitter (:func:`emit`) and the folder the
local stack keeps its state in (:data:`DATA_DIR`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DATA_DIR = Path(".irtcat")


class CliError(Exception):
    """A one-line reason the command cannot run (exit status 2)."""


def emit(args: argparse.Namespace, summary: dict[str, Any], human: str) -> None:
    """The command's result: ``summary`` as JSON with ``--json``, else the ``human`` line(s)."""
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(human)


def stack_outputs(args: argparse.Namespace, needs: tuple[str, ...]) -> dict[str, str]:
    """The stack's outputs ``needs`` names: explicit options, else a deployed stack (--stack),
    else the stack of ``irtcat local up``."""
    outputs: dict[str, str] = {}
    if args.stack:
        import boto3

        desc = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    else:
        import os

        state = Path(args.data_dir) / "runtime.json"
        if state.exists():
            info = json.loads(state.read_text())
            os.environ.setdefault("AWS_ENDPOINT_URL", info["endpoint"])
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            outputs = {k: str(v) for k, v in info["outputs"].items()}
    for key, opt in (("HistoryBucketName", "bucket"), ("PipeDeadLetterQueueUrl", "queue_url"),
                     ("AnswerStreamName", "stream")):
        if getattr(args, opt, None):  # the dlq commands' explicit resources
            outputs[key] = getattr(args, opt)
    missing = [k for k in needs if k not in outputs]
    if missing:
        raise CliError(f"no stack found: start 'irtcat local up', or pass --stack or the resource options "
                       f"(missing {', '.join(missing)})")
    return outputs
