"""Shared by the scale-out benchmarks (`bench_wakeup.py`, `bench_claim_race.py`, `bench_scale_out.py`): a
fresh database per backend, jobs made at the store level, spawned worker processes, and percentiles.

Each PostgreSQL run gets a private schema (``tests/postgres.py:fresh_schema``), dropped afterwards; each
SQLite run a file in a temporary directory. Not a benchmark itself.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.postgres import fresh_schema  # noqa: E402  (the tests' private-schema helper)

from dreamreel.core.generation import Generation  # noqa: E402
from dreamreel.core.request import GenerationRequest  # noqa: E402

BACKENDS = ("postgres", "sqlite")


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A store URL on an empty database of ``backend``, removed on exit."""
    if backend == "postgres":
        with fresh_schema() as url:
            yield url
    elif backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dreamreel-bench-") as tmp:
            yield f"sqlite:///{tmp}/dreamreel.db"
    else:
        raise ValueError(f"unknown backend {backend!r}")


def make_job(n: int) -> Generation:
    """A queued text-to-video generation, as a dialect would create it (no callback)."""
    return Generation.new(owner="bench", dialect="luma", request=GenerationRequest(prompt=f"bench clip {n}"), seed=n)


def spawn_context() -> multiprocessing.context.SpawnContext:
    """Worker processes start as fresh interpreters: no inherited connections or pool threads."""
    return multiprocessing.get_context("spawn")


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (q in 1..99), interpolated between closest ranks."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
