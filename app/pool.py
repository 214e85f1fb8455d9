"""A bounded pool for the render/embed work of requests.

A fixed number of threads does the work (each keeps its own pyrender context: the renderer
holds one per thread). Admission is bounded too, and decided at the door, before a
request's body is read: at most `workers + queue` requests hold an `Admission` at once;
one more is refused with `PoolFull` (HTTP 503 with Retry-After) instead of waiting in an
unbounded queue or filling memory with bodies it cannot serve. Work hands its last part
to another thread (`run`: the forward pass, which the batcher shares between requests);
the pool thread is then free for the next request, and the admission is held until that
part is done too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


class PoolFull(RuntimeError):
    """Every worker is busy and the waiting room is full."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the server is busy rendering other meshes; retry shortly")
        self.retry_after_s = retry_after_s


class Admission:
    """A place in the pool, held from the door until the request's work is done (also
    when the request goes away first: the thread still runs). Closing twice is harmless."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._open = True
        self.in_use = False  # work runs under it: the work's end closes it

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
        self._release()


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
        """Requests inside the pool now: reading their body, running, or waiting."""
        return self._admitted

    def admit(self) -> Admission:
        with self._lock:
            if self._admitted >= self.capacity:
                raise PoolFull(self.retry_after_s)
            self._admitted += 1
        return Admission(self._release)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(
        self, admission: Admission, fn: Callable[[], tuple[T, Future[U]]]
    ) -> tuple[T, Future[U]]:
        """Run `fn` on a pool thread under `admission`, without blocking the event loop.
        `fn` returns its result and the Future of the work it handed on to another thread;
        the pool thread is free once `fn` returns, and the admission ends when the handed-on
        work does (or when `fn` fails)."""
        admission.in_use = True
        future = self._executor.submit(fn)

        def hand_on(done: Future[tuple[T, Future[U]]]) -> None:
            if done.cancelled() or done.exception() is not None:
                admission.close()
            else:
                done.result()[1].add_done_callback(lambda _: admission.close())

        future.add_done_callback(hand_on)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
