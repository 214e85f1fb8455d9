"""A bounded pool for the render/embed work of requests.

A fixed number of threads does the work (each keeps its own pyrender context: the renderer
holds one per thread). Admission is bounded too: at most `workers + queue` requests are
inside the pool at once; one more is refused at the door with `PoolFull` (HTTP 503 with
Retry-After) instead of waiting in an unbounded queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class PoolFull(RuntimeError):
    """Every worker is busy and the waiting room is full."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the server is busy rendering other meshes; retry shortly")
        self.retry_after_s = retry_after_s


class RenderPool:
    def __init__(self, workers: int, queue: int, retry_after_s: int = 2) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Requests inside the pool now, running or waiting for a thread."""
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                raise PoolFull(self.retry_after_s)
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def submit(self, fn: Callable[[], T]) -> T:
        """Run `fn` on a pool thread and wait for it (for callers that are threads)."""
        self._admit()
        try:
            return self._executor.submit(fn).result()
        finally:
            self._release()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on a pool thread without blocking the event loop."""
        self._admit()
        future = self._executor.submit(fn)
        try:
            return await asyncio.wrap_future(future)
        finally:
            # A request that went away still holds its admission until its thread is free.
            future.add_done_callback(lambda _: self._release())

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
