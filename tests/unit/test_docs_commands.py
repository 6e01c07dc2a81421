"""Every command the README and docs/ show exists: its subcommands answer ``--help`` and its
options are ones that command takes."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest
from irtcat.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# ``./dev TASK``: the tasks the script's case statement knows
DEV_TASKS = set(re.findall(r"^  (\w+)\)", (ROOT / "dev").read_text(), re.M))


def shown_commands(text: str) -> list[str]:
    """``./dev ...`` and ``irtcat ...`` commands in inline code and in fenced shell blocks."""
    found = re.findall(r"`((?:\./dev|irtcat) [^`]+)`", text)
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split("#", 1)[0].strip().removeprefix("$ ")
            if line.startswith(("./dev ", "irtcat ")):
                found.append(line)
    return [c for c in found if not c.rstrip().endswith("...")]


def _help_of(path: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0, f"irtcat {' '.join(path)} --help failed"
    return out.getvalue()


def _benchmarks() -> set[str]:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.BENCHES)


def check_irtcat(words: list[str]) -> None:
    path = []
    for word in words:
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    while path:  # the longest prefix that is a command; the rest are its arguments
        try:
            text = _help_of(path)
            break
        except AssertionError:
            raise
        except BaseException:
            path.pop()
    else:
        text = _help_of([])
    for option in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        assert option in text, f"irtcat {' '.join(path)} has no option {option}"


def check(command: str) -> None:
    words = shlex.split(command.replace("|", " "))
    if words[0] == "irtcat":
        check_irtcat(words[1:])
        return
    task = words[1]
    assert task in DEV_TASKS, f"./dev has no task {task!r} (has: {sorted(DEV_TASKS)})"
    if task == "irtcat":
        check_irtcat(words[2:])
    elif task == "demo":
        check_irtcat(["local", "demo", *words[2:]])
    elif task == "bench":
        names = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--only"]
        unknown = [n for n in names if n.islower() and n not in _benchmarks()]
        assert not unknown, f"no benchmark named {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_exists(page: Path) -> None:
    commands = shown_commands(page.read_text(encoding="utf-8"))
    for command in commands:
        check(command)


def test_the_check_catches_a_command_that_does_not_exist() -> None:
    assert shown_commands("run `irtcat bank generate --items 10` then\n```bash\n./dev bench --only soak\n```") == [
        "irtcat bank generate --items 10", "./dev bench --only soak"]
    for wrong in ("irtcat bank generate --no-such-option", "./dev deploy", "./dev bench --only no_such_bench",
                  "irtcat local demo --no-such-option"):
        with pytest.raises(AssertionError):
            check(wrong)
    assert sum(len(shown_commands(p.read_text(encoding="utf-8"))) for p in PAGES) >= 20
