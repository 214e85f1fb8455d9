"""`gmvit reindex DIR`: rebuild a running server's index from a folder, with a progress bar.

By default DIR is a folder on the server (under its GMVIT_ALLOWED_ROOTS); `--upload`
sends the mesh files under a local DIR instead, keeping their folders (the labels).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from tqdm import tqdm

from app.cli import CLIError
from app.client import Client, add_client_arguments, print_json
from renderer.layout import is_side_file, mesh_files

POLL_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reindex",
        help="rebuild the server's index from a folder (labels from ModelNet class folders)",
    )
    parser.add_argument("dir", help="the folder (on the server unless --upload)")
    parser.add_argument(
        "--upload", action="store_true", help="send the files of a local folder instead"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="print the job id and return at once"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def _upload(client: Client, folder: Path) -> dict:
    # Mesh files, and the files they name (a glTF's .bin and images, an OBJ's .mtl).
    meshes = {entry.path for entry in mesh_files(folder)}
    paths = sorted(p for p in folder.rglob("*") if p in meshes or is_side_file(p))
    if not paths:
        raise CLIError(f"{folder}: no mesh files in it")
    with contextlib.ExitStack() as stack:
        files = [
            ("files", (p.relative_to(folder).as_posix(), stack.enter_context(p.open("rb"))))
            for p in paths
        ]
        return client.call("POST", "/reindex", files=files)


def run(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    folder = Path(args.dir).expanduser()
    if args.upload:
        if not folder.is_dir():
            raise CLIError(f"{args.dir}: not a folder")
        job = _upload(client, folder)
    else:
        job = client.call("POST", "/reindex", data={"folder": str(folder.absolute())})
    if args.no_wait:
        print_json(job) if args.json else print(job["id"])
        return 0
    job = _follow(client, job)
    if args.json:
        print_json(job)
    else:
        for failure in job["failures"]:
            print(f"failed: {failure['file']}: {failure['error']}")
        print(f"job {job['id']} {job['state']}: {job['indexed']} indexed, {job['failed']} failed")
    if job["state"] != "succeeded":
        raise CLIError(f"the reindex {job['state']}: {job['error'] or 'see the job'}")
    return 0


def _follow(client: Client, job: dict) -> dict:
    """Poll the job until it ends, with a bar; Ctrl-C cancels it on the server."""
    bar = tqdm(total=job["total"] or None, desc="reindex", unit="file")
    try:
        while job["state"] in ("queued", "running"):
            time.sleep(POLL_S)
            job = client.call("GET", f"/jobs/{job['id']}")
            bar.total = job["total"] or None
            bar.n = job["done"]
            bar.set_postfix(failed=job["failed"], refresh=False)
            bar.refresh()
    except KeyboardInterrupt:
        client.call("DELETE", f"/jobs/{job['id']}")
        bar.close()
        print(f"cancelled job {job['id']}")
        raise
    bar.close()
    return job
