"""Prometheus metrics of the service (`GET /metrics`).

Metrics live in the process-wide default registry, so they are defined once here and shared
by every app made in the process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

REQUEST_SECONDS = Histogram(
    "gmvit_request_seconds",
    "HTTP request latency by route template, method and status class",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STAGE_SECONDS = Histogram(
    "gmvit_stage_seconds",
    "Time spent in each stage of the mesh pipeline",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INDEX_SHAPES = Gauge("gmvit_index_shapes", "Shapes in the serving index")
POOL_ADMITTED = Gauge("gmvit_pool_admitted", "Requests inside the render/embed pool")
POOL_REJECTED = Counter("gmvit_pool_rejected_total", "Requests refused with 503: pool full")
JOBS_SUBMITTED = Counter("gmvit_jobs_submitted_total", "Jobs submitted", ["kind"])
JOBS_ACTIVE = Gauge("gmvit_jobs_active", "Jobs queued or running (as this server sees them)")


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time a block: observe it in the stage histogram and record it in `timings` (ms)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        STAGE_SECONDS.labels(name).observe(elapsed)
        timings[name] = round(elapsed * 1000.0, 2)
