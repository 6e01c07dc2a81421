"""Displayable item content for generated banks: arithmetic items whose difficulty follows b.

Harder items (larger b) use larger operands and harder operations, so that a demo test reads
like a real one. The wrong options are near misses of the right answer.
"""

from __future__ import annotations

import numpy as np

_OPS = ["+", "-", "x", "/"]


def arithmetic_item(b: float, rng: np.random.Generator) -> tuple[str, list[str], int]:
    """A stem, four options and the index of the correct one, for difficulty ``b``."""
    level = float(np.clip((b + 3.0) / 6.0, 0.0, 1.0))  # 0 = easiest, 1 = hardest
    op = _OPS[min(3, int(level * 4))]
    hi = int(5 + level**2 * 95)
    x, y = int(rng.integers(2, hi + 2)), int(rng.integers(2, max(3, hi // 2 + 2)))
    if op == "+":
        answer = x + y
    elif op == "-":
        x, y = max(x, y), min(x, y)
        answer = x - y
    elif op == "x":
        answer = x * y
    else:
        answer = x
        x = x * y
    stem = f"What is {x} {op} {y}?"
    distractors: set[int] = set()
    while len(distractors) < 3:
        delta = int(rng.integers(1, max(3, abs(answer) // 5 + 3)))
        cand = answer + (delta if rng.random() < 0.5 else -delta)
        if cand != answer:
            distractors.add(cand)
    options = [answer, *sorted(distractors)]
    order = rng.permutation(4)
    shuffled = [str(options[k]) for k in order]
    return stem, shuffled, int(np.flatnonzero(order == 0)[0])
