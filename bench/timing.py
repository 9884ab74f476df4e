"""How every benchmark times two things side by side (this machine is shared and noisy).

``interleaved(a, b, rounds)`` warms both up, then alternates which of the pair runs first in
each round, so drift in machine load lands on both samples alike; it returns the per-call
seconds of each. ``print_table`` prints a benchmark module's Markdown rows under the common
header of docs/performance.md.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

WARM_UP = 20


def interleaved(
    a: Callable[[], Any], b: Callable[[], Any], rounds: int
) -> tuple[list[float], list[float]]:
    for _ in range(WARM_UP):
        a(), b()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(rounds):
        first, second = (a, b) if i % 2 else (b, a)
        started = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        ended = time.perf_counter()
        (ta if first is a else tb).append(middle - started)
        (tb if first is a else ta).append(ended - middle)
    return ta, tb


def print_table(rows: Iterable[str], rounds: int) -> int:
    print("| benchmark | subject | baseline | ratio / value | target |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nrounds={rounds}, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0
