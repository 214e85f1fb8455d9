"""Cheap denial of service, measured: what a hostile upload costs the real server.

Starts `gmvit serve` (from this checkout, or from `--code DIR`, another checkout to compare
with) on a free port with its default model, sends one request at a time to
`/classify` and reports, per file: the answer, how long it held a render slot, and the
server process's memory (RSS after, and its peak) and its parser workers' memory.

- `deep.glb`: 2,000 nested glTF nodes, each with a box (124 KB);
- `big.off`: a legal OFF (under 64 MiB) with 1,988,096 faces;
- `bomb.3mf`: a 3MF whose 786 KB unpack to 300 MB of vertex tags.

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m bench.hostile [--code DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import trimesh

from tests.renderer.meshes import nested_glb

CUBE = b"OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


def hostile_files() -> dict[str, bytes]:
    sphere = trimesh.creation.uv_sphere(radius=1.0, count=[706, 706])
    off = io.BytesIO()
    off.write(f"OFF\n{len(sphere.vertices)} {len(sphere.faces)} 0\n".encode())
    np.savetxt(off, sphere.vertices, fmt="%.3f")
    np.savetxt(off, np.hstack([np.full((len(sphere.faces), 1), 3), sphere.faces]), fmt="%d")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("3D/3dmodel.model", "w", force_zip64=True) as member:
            member.write(
                b'<?xml version="1.0"?><model unit="millimeter" xmlns="http://schemas.'
                b'microsoft.com/3dmanufacturing/core/2015/02"><resources><object id="1" '
                b'type="model"><mesh><vertices>'
            )
            for _ in range(300):
                member.write(b'<vertex x="1" y="2" z="3"/>' * 40_000)
    return {
        "deep.glb": nested_glb(2000, box_on_every_node=True),
        "big.off": off.getvalue(),
        "bomb.3mf": bomb.getvalue(),
    }


def memory_mib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def parser_workers(pid: int) -> list[int]:
    """The server's parser worker processes (children of any of its threads)."""
    children = [
        child for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]  # fmt: skip
    return [
        int(child)
        for child in children
        if b"renderer.workers" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    files = hostile_files()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="gmvit-hostile-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMVIT_")}
    env.update(
        PYTHONPATH=str(args.code), PYOPENGL_PLATFORM=env.get("PYOPENGL_PLATFORM", "osmesa"),
        GMVIT_DATA_DIR=data_dir, GMVIT_API_KEY="bench", GMVIT_DEMO="false",
        GMVIT_WORKERS="2", GMVIT_THREADS="1",
    )  # fmt: skip
    log = open(Path(data_dir) / "server.log", "wb")  # noqa: SIM115 (open while it runs)
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=args.code, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        client = httpx.Client(base_url=url, timeout=600)
        client.post("/classify", files={"file": ("cube.off", CUBE)})  # warm: a parser, a GL context
        report: dict = {"code": str(args.code), "server_rss_mib": memory_mib(server.pid)[0]}
        for name, blob in files.items():
            start = time.perf_counter()
            response = client.post("/classify", files={"file": (name, blob)})
            held = time.perf_counter() - start
            rss, peak = memory_mib(server.pid)
            report[name] = {
                "status": response.status_code,
                "held_s": round(held, 2),
                "answer": response.json().get("detail") or response.json()["timings_ms"],
                "server_rss_mib": rss,
                "server_peak_mib": peak,
                "parser_workers_rss_mib": [memory_mib(w)[0] for w in parser_workers(server.pid)],
            }
        print(json.dumps(report, indent=1))
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
