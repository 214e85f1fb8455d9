"""The render pool's door, and two servers sharing one data dir.

- A full pool answers 503 before it reads a request's body: requests that hold every
  place are made to wait (their bodies held back) rather than raced.
- A body that trickles in is cut with 408.
- Two in-process replicas on one data dir: a restart of one leaves the other's running
  job alone, and the same file sent to both at once is one shape.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from gmvit.data import synth
from tests.app.conftest import index_write_lock, off_bytes
from tests.e2e.conftest import KEY, Server, service_env
from tests.polling import wait_job, wait_until

pytestmark = pytest.mark.slow


def admitted(server: Server) -> float:
    text = server.http.get("/metrics").text
    return float(re.search(r"^gmvit_pool_admitted (\S+)$", text, re.M).group(1))


@contextmanager
def held_upload(server: Server, declared: int = 100_000) -> Iterator[socket.socket]:
    """A POST /classify whose headers are sent and whose body is held back."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(
        (
            "POST /classify HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.off"\r\n\r\nOFF\n'
    )
    try:
        yield sock
    finally:
        sock.close()


def answer_of(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_full_pool_refuses_before_reading_a_body(tmp_path) -> None:
    server = Server(service_env(tmp_path / "var", workers=1, queue=1), tmp_path / "server.log")
    try:
        with held_upload(server), held_upload(server):
            wait_until(lambda: admitted(server) == 2, 60, "both places taken")
            # Headers only: the answer cannot wait for a body it never gets.
            with held_upload(server) as third:
                head = answer_of(third)
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"retry-after: 2" in head.lower()
            refused = server.http.post(
                "/classify", files={"file": ("c.off", off_bytes(synth.make_shape("chair", rng())))}
            )
            assert refused.status_code == 503 and "busy" in refused.json()["detail"]
        wait_until(lambda: admitted(server) == 0, 60, "the places freed")
        served = server.http.post(
            "/classify", files={"file": ("c.off", off_bytes(synth.make_shape("chair", rng())))}
        )
        assert served.status_code == 200, served.text
    finally:
        server.stop()


def rng(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_a_body_that_trickles_in_is_cut_with_408(tmp_path) -> None:
    server = Server(service_env(tmp_path / "var", upload_timeout_s=2), tmp_path / "server.log")
    try:
        with held_upload(server) as sock:
            head = answer_of(sock)
        assert head.startswith(b"HTTP/1.1 408"), head
        wait_until(lambda: admitted(server) == 0, 60, "its place freed")
    finally:
        server.stop()


def test_two_replicas_on_one_data_dir(tmp_path, synthetic_set) -> None:
    allowed = tmp_path / "allowed"
    for copy in range(3):
        shutil.copytree(synthetic_set, allowed / "set" / f"copy{copy}")
    env = service_env(tmp_path / "var", allowed_roots=allowed)
    a = Server(env, tmp_path / "a.log")
    b = Server(env, tmp_path / "b-1.log")
    try:
        job = a.http.post("/reindex", data={"folder": str(allowed / "set")}, headers=KEY).json()
        wait_until(
            lambda: a.http.get(f"/jobs/{job['id']}").json()["done"] >= 1, 120, "A's job running"
        )
        b.stop()  # B restarts while A's job runs: A's files are A's
        b = Server(env, tmp_path / "b-2.log")
        done = wait_job(a.http, job["id"], timeout_s=300)
        assert done["state"] == "succeeded", done
        assert done["done"] == done["total"] == done["indexed"] + done["failed"]

        def add_to_both(seed: int) -> set[int]:
            data = off_bytes(synth.make_shape("sofa", rng(1000 + seed)))
            with ThreadPoolExecutor(2) as pool:
                answers = list(
                    pool.map(
                        lambda server: server.http.post(
                            "/shapes", files={"file": (f"s{seed}.off", data)}, headers=KEY
                        ),
                        (a, b),
                    )
                )
            assert all(answer.status_code in (200, 201) for answer in answers), answers
            return {answer.json()["id"] for answer in answers}

        for seed in range(6):
            assert len(add_to_both(seed)) == 1  # one shape, whichever replica won
        shapes = a.http.get("/shapes", params={"limit": 1000}).json()["total"]
        assert shapes == b.http.get("/shapes", params={"limit": 1000}).json()["total"]
        assert shapes == done["indexed"] + 6
    finally:
        a.stop()
        b.stop()


def test_leftovers_of_a_dead_replica_are_removed_at_the_next_start(tmp_path) -> None:
    env = service_env(tmp_path / "var")
    server = Server(env, tmp_path / "a.log")
    files = [
        ("files", (f"c/{i}.off", off_bytes(synth.make_shape("chair", rng(i))))) for i in range(40)
    ]
    # Holding the index's write lock, the job cannot end before it is killed.
    with index_write_lock(Path(env["GMVIT_DATA_DIR"])):
        job = server.http.post("/reindex", files=files, headers=KEY).json()
        server.kill9()  # its job dies with it, leaving its uploaded files behind
    leftovers = Path(env["GMVIT_DATA_DIR"]) / "jobs"
    assert (leftovers / job["id"]).exists()
    restarted = Server(env, tmp_path / "b.log")
    try:
        assert not (leftovers / job["id"]).exists()
    finally:
        restarted.stop()
