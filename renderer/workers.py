"""A small persistent pool of parser processes, so untrusted bytes never run in ours.

Each worker is a fresh interpreter (what multiprocessing's 'spawn' gives: the service
process holds torch and OpenGL state that must not be forked), started with subprocess
rather than multiprocessing so the caller's `__main__` is never re-imported in it. It is
started once and reused, so a load costs one round trip through a pipe. A worker that runs
past the time limit is killed and replaced; one that dies (a segfault in a parser) is
replaced and its file reported as malformed. Each request runs under an address-space cap
(RLIMIT_AS), so a decompression bomb fails with MemoryError inside the worker; a worker
left holding more than `max_rss` bytes after a request (memory the allocator keeps after a
large file) is replaced. Whatever a library prints or warns in a worker goes nowhere: the
caller gets one typed error.
"""

from __future__ import annotations

import atexit
import os
import queue
import resource
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderer.errors import (
    ERRORS_BY_NAME,
    FileTooLargeError,
    LoadTimeoutError,
    MalformedMeshError,
    MeshError,
)

if TYPE_CHECKING:
    import numpy as np

    from renderer.parsing import LoadRequest

_STARTUP_TIMEOUT_S = 120.0
# A worker holding more than this after a request is replaced (a fresh one holds ~150 MiB).
MAX_WORKER_RSS = 768 * 2**20


def _serve(request_fd: int, reply_fd: int) -> None:
    """Worker main loop: a LoadRequest in, (vertices, faces) or an error out."""
    import warnings

    import numpy as np

    from renderer.parsing import parse_request

    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    _silence_output()
    replies.send(("ready",))
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        max_memory = request.limits.max_memory
        try:
            resource.setrlimit(resource.RLIMIT_AS, (_cap(max_memory, hard), hard))
            vertices, faces = parse_request(request)
            reply: tuple[Any, ...] = ("ok", vertices, faces)
        except MeshError as exc:
            reply = ("error", type(exc).__name__, str(exc))
        except MemoryError:
            reply = ("error", FileTooLargeError.__name__, _memory_message(max_memory))
        except Exception as exc:  # a parser bug on odd bytes: still this file's problem
            message = f"this file could not be parsed ({type(exc).__name__}: {exc})"[:300]
            reply = ("error", MalformedMeshError.__name__, message)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        del request
        replies.send(reply)


def _silence_output() -> None:
    """Point file descriptors 1 and 2 at /dev/null: C libraries (assimp, Draco) print there."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _cap(max_memory: int, hard: int) -> int:
    return max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)


def _memory_message(max_memory: int) -> str:
    return (
        f"loading this file needs more than {max_memory / 2**30:.1f} GiB of memory "
        "(a decompression bomb or an absurdly large mesh)"
    )


class _Died(Exception):
    pass


_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_WORKER_MAIN = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from renderer.workers import _serve; "
    "_serve(int(sys.argv[2]), int(sys.argv[3]))"
)
# Parsing needs no BLAS threads; fewer threads also keep the address space small.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class _Worker:
    def __init__(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER_MAIN,
                _PACKAGE_ROOT,
                str(request_read),
                str(reply_write),
            ],
            pass_fds=(request_read, reply_write),
            stdin=subprocess.DEVNULL,
            env={**os.environ, **_WORKER_ENV},
        )
        os.close(request_read)
        os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)
        if not self.replies.poll(_STARTUP_TIMEOUT_S):
            self.kill()
            raise RuntimeError("the mesh parser worker did not start")
        try:
            self.replies.recv()
        except EOFError:
            self.kill()
            raise RuntimeError("the mesh parser worker died while starting") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def rss(self) -> int:
        """Resident memory in bytes (0 if it cannot be read)."""
        try:
            with open(f"/proc/{self.pid}/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def call(self, request: tuple[Any, ...], timeout_s: float) -> tuple[Any, ...]:
        try:
            self.requests.send(request)
        except (BrokenPipeError, ConnectionResetError):
            raise _Died from None
        if not self.replies.poll(timeout_s):
            raise TimeoutError
        try:
            return self.replies.recv()
        except (EOFError, ConnectionResetError):
            raise _Died from None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.requests.close()
        self.replies.close()


class ParserPool:
    """Up to `size` parser processes, started on demand and reused; thread safe."""

    def __init__(self, size: int = 2, max_rss: int = MAX_WORKER_RSS) -> None:
        self.max_rss = max_rss
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []

    def parse(self, request: LoadRequest) -> tuple[np.ndarray, np.ndarray]:
        """Parse in a worker; return (vertices, faces) or raise the worker's MeshError."""
        timeout_s = request.limits.timeout_s
        with self._slots:
            worker = self._take()
            try:
                reply = worker.call(request, timeout_s)
            except _Died:
                self._discard(worker)
                raise MalformedMeshError(
                    "the parser crashed on this file; it is damaged or hostile"
                ) from None
            except TimeoutError:
                self._discard(worker)
                raise LoadTimeoutError(
                    f"loading took longer than the {timeout_s:g} s limit and was stopped"
                ) from None
            if worker.rss() > self.max_rss:
                self._discard(worker)
            else:
                self._idle.put(worker)
        if reply[0] == "error":
            raise ERRORS_BY_NAME[reply[1]](reply[2])
        return reply[1], reply[2]

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._workers]

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.kill()

    def _take(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            if worker.is_alive():
                return worker
            self._discard(worker)  # died while idle (e.g. the OOM killer): start afresh
        worker = _Worker()
        with self._lock:
            self._workers.append(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)


_pool: ParserPool | None = None
_pool_lock = threading.Lock()


def parser_pool() -> ParserPool:
    """The process-wide pool, created on first use and closed at exit."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ParserPool()
            atexit.register(_pool.close)
        return _pool
