"""The local stack's processes die with it.

Every process the stack starts (the service process, the container zygote, containers started
as fresh interpreters; the zygote's forks inherit it) joins one process group, which
``irtcat local up`` records, so ``irtcat local down`` can stop whatever is left even after the
stack's own process was killed (``kill -9``). And each of them watches its parent: when the
parent is gone it exits within :data:`WATCH_INTERVAL_S`, in the middle of an invocation too
(a container retrying a call against the dead stack's endpoint would otherwise live on for
seconds). On Linux a forked container also asks for a parent-death signal (``prctl``), which
the kernel delivers at once; its parent, the zygote, is single-threaded, so the signal cannot
come from the exit of a mere thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

WATCH_INTERVAL_S = 0.2
_PR_SET_PDEATHSIG = 1
_group: int | None = None
_lock = threading.Lock()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` in the stack's process group (the first such child
    founds it; a group whose members have all exited is founded again)."""
    global _group
    with _lock:
        for _ in range(2):
            join = _group if _group is not None and _group_alive(_group) else 0
            try:
                proc: subprocess.Popen[Any] = subprocess.Popen(args, process_group=join, **kwargs)
            except subprocess.SubprocessError:
                _group = None  # the group emptied between the check and the start: found a new one
                continue
            if join == 0:
                _group = proc.pid
            return proc
    raise RuntimeError("could not start a process in the local stack's process group")


def stack_group() -> int | None:
    """The process group of the stack's children (None until one started)."""
    return _group


def stop_group(pgid: int, grace_s: float = 3.0) -> int:
    """SIGTERM to every process of the group, SIGKILL to those left after ``grace_s``; returns
    how many were still there to signal (0: the group was already empty)."""
    if pgid <= 1 or pgid == os.getpgrp() or not _group_alive(pgid):
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return 1


def watch_parent() -> None:
    """Exit this process as soon as its parent is gone (a daemon thread polls the parent pid:
    an orphan is re-parented, so the pid changes)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def die_with_parent() -> None:
    """On Linux, the kernel's parent-death signal (SIGKILL) for this process; a no-op elsewhere.
    Call it in a child whose parent is single-threaded (the signal follows the thread that forked)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
