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
