"""Running a reindex: plan, chunks, commit.

`plan` lists the files and cuts them into chunks; each `chunk` renders and embeds its
files into a part file (descriptors, names, labels, hashes) and thumbnails under the job's
folder; `commit` adds every part to a new index generation and swaps it in. In-process the
pieces run one after the other on one thread; on RQ each chunk is its own RQ job, so every
free worker takes one, and the commit runs after the last (see `backends`).

A piece that raises ends its job (`end_on_error`): `Cancelled` as cancelled, `JobFailed`
as failed with its message (a reason a user can read), anything else as failed with the
exception's type and message (server paths left out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import renderer
from app import pipeline
from app.batcher import BatchingEmbedder
from app.jobs import state
from app.jobs.layout import JobFolders, mesh_files
from app.jobs.state import JobStore
from app.settings import Settings
from gmvit import Embedding
from index import ShapeIndex
from renderer.files import write_atomic
from renderer.layout import MESH_EXTENSIONS, is_side_file

log = logging.getLogger("gmvit.jobs")


class Cancelled(Exception):
    """The job was cancelled: its pieces stop at their next step."""


class JobFailed(Exception):
    """The job cannot go on, for a reason a user can read (the message says it)."""


@dataclass
class ReindexTarget:
    """What a reindex works with: settings (how many files it renders at once among
    them), the model, the index (shared with other processes) and the job folders."""

    settings: Settings
    embedder: BatchingEmbedder
    index: ShapeIndex
    folders: JobFolders

    def __post_init__(self) -> None:
        self.threads = self.settings.reindex_render_threads
        # Kept for every chunk: each thread keeps its renderer (a GL context) between files.
        self.render_threads = ThreadPoolExecutor(self.threads, thread_name_prefix="reindex")

    def close(self) -> None:
        self.render_threads.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------ ending a job


def end_job(
    store: JobStore, job_id: str, target: ReindexTarget, end: str, **fields: object
) -> None:
    """Remove the job's folder (its uploaded files, parts and thumbnails), then record how
    it ended: a job reads as ended only once nothing of it is left on disk."""
    target.folders.remove(job_id)
    state.finish(store, job_id, end, **fields)


def end_on_error(
    store: JobStore, job_id: str, target: ReindexTarget, root: Path, exc: BaseException
) -> None:
    if isinstance(exc, Cancelled):
        end_job(store, job_id, target, state.CANCELLED)
        return
    if isinstance(exc, JobFailed):
        message = str(exc)
    else:
        log.error("job %s failed", job_id, exc_info=exc)
        message = f"{type(exc).__name__}: {exc}"
    for place, name in ((root, "<folder>"), (target.settings.data_path, "<data dir>")):
        message = message.replace(str(place), name)
    end_job(store, job_id, target, state.FAILED, error=message)


def check_cancel(store: JobStore, job_id: str) -> None:
    if state.cancel_requested(store, job_id):
        raise Cancelled


# ------------------------------------------------------------------ the pieces


def plan(
    store: JobStore, job_id: str, root: Path, *, chunk_size: int, uploaded: bool
) -> list[list[tuple[str, str | None]]]:
    """Start the job and cut its mesh files into chunks of (path, label). In an uploaded
    batch every file was meant to be indexed: those that are not mesh files are failures."""
    # A plan run again (its first worker died) finds the job running already.
    if not state.start(store, job_id) and state.cancel_requested(store, job_id):
        raise Cancelled
    store.start_piece(job_id, "plan")
    files = mesh_files(root)
    if uploaded:
        meshes = {entry.path for entry in files}
        others = (p for p in root.rglob("*") if p.is_file() and p not in meshes)
        for path in sorted(p for p in others if not is_side_file(p)):
            name = path.relative_to(root).as_posix()
            store.add_failure(job_id, "plan", name, "not a mesh file (unknown extension)")
    if not files:
        raise JobFailed(f"no mesh files ({', '.join(MESH_EXTENSIONS)}) found in the folder")
    items = [(str(entry.path), entry.label) for entry in files]
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    store.update(job_id, total=len(files), chunks=len(chunks))
    return chunks


def _draw_file(
    path: Path, target: ReindexTarget, inside: list[Path]
) -> tuple[np.ndarray, str, bytes, Future[Embedding]]:
    """The file's views, its sha256 and its thumbnail, and its embedding to come (on a pool
    thread, which is free for the next file once the views are handed to the batcher)."""
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in inside):
        raise renderer.MeshError("a link to a file outside the allowed folders: refused")
    views = pipeline.render(real, target.embedder, target.settings, filename=path.name)
    embedding = target.embedder.submit(views)
    return views, pipeline.sha256_of(real), pipeline.grid_png(views), embedding


def _describe_all(
    files: list[tuple[Path, str | None]], target: ReindexTarget, inside: list[Path]
) -> Iterator[tuple[Path, str | None, tuple[pipeline.Described, str, bytes] | Exception]]:
    """Describe files on the target's threads, yielding (path, label, result) in order; the
    result is (Described, sha256, thumbnail), or the file's MeshError or OSError. A
    pipeline: the threads load and render the next files while the ones already drawn wait
    for a forward pass, which they share. Few files are in flight at once, so a cancel is
    quick."""
    window = 2 * target.threads
    pending: list[tuple[Path, str | None, Future]] = []
    queue = iter(files)
    try:
        while True:
            while len(pending) < window and (item := next(queue, None)) is not None:
                path, label = item
                future = target.render_threads.submit(_draw_file, path, target, inside)
                pending.append((path, label, future))
            if not pending:
                return
            path, label, future = pending.pop(0)
            try:
                views, sha256, thumbnail, embedding = future.result()
            except (renderer.MeshError, OSError) as exc:
                yield path, label, exc
                continue
            described = pipeline.described(views, embedding.result(), {})
            yield path, label, (described, sha256, thumbnail)
    finally:
        for _, _, future in pending:
            future.cancel()


def run_chunk(
    store: JobStore,
    job_id: str,
    number: int,
    root: Path,
    files: list[tuple[str, str | None]],
    target: ReindexTarget,
    inside: list[Path],
) -> None:
    """Render and embed `files` into part `number` of the job: descriptors, names, labels,
    hashes and thumbnails under the job's folder, written whole or not at all. Run again
    (its first worker died), it starts over and counts once."""
    piece = state.chunk_piece(number)
    folder = target.folders.path(job_id)
    thumbs = folder / "thumbs"
    rows: list[dict[str, object]] = []
    vectors = []
    check_cancel(store, job_id)
    store.start_piece(job_id, piece)
    paths = [(Path(path), label) for path, label in files]
    for done, (path, label, result) in enumerate(_describe_all(paths, target, inside), 1):
        name = path.relative_to(root).as_posix()
        if isinstance(result, Exception):
            store.add_failure(job_id, piece, name, str(result))
        else:
            described, sha256, thumbnail = result
            thumb = thumbs / f"{number}-{len(rows)}.png"
            write_atomic(thumb, thumbnail, durable=False)
            rows.append({"name": name, "label": label, "sha256": sha256, "thumb": thumb.name})
            vectors.append(described.descriptor)
        store.progress(job_id, piece, done)
        check_cancel(store, job_id)
    part = {"rows": rows, "vectors": np.stack(vectors).tolist() if vectors else []}
    write_atomic(folder / f"part-{number:05d}.json", json.dumps(part).encode())


def commit_parts(store: JobStore, job_id: str, chunks: int, target: ReindexTarget) -> int:
    """Add every part to a new index generation and swap it in; returns how many shapes.
    Identical files are indexed once (the first, in file order); shapes added to the live
    index since the job was submitted are kept."""
    check_cancel(store, job_id)
    store.start_piece(job_id, "commit")
    job = store.get(job_id)
    source = "demo" if job.kind == "demo" else "reindex"
    folder = target.folders.path(job_id)
    with target.index.rebuild(since=job.since_id) as builder:
        seen: dict[str, str] = {}
        indexed = 0
        for number in range(chunks):
            path = folder / f"part-{number:05d}.json"
            if not path.is_file():
                raise JobFailed(f"part {number} of the job is missing (its worker stopped)")
            part = json.loads(path.read_text())
            for row, vector in zip(part["rows"], part["vectors"], strict=True):
                if row["sha256"] in seen:
                    store.add_failure(
                        job_id,
                        "commit",
                        row["name"],
                        f"identical to {seen[row['sha256']]}: skipped",
                    )
                    continue
                seen[row["sha256"]] = row["name"]
                builder.add(
                    np.asarray(vector, dtype=np.float32),
                    name=row["name"],
                    sha256=row["sha256"],
                    source=source,
                    label=row["label"],
                    thumbnail=(folder / "thumbs" / row["thumb"]).read_bytes(),
                )
                indexed += 1
        if indexed == 0:
            raise JobFailed("no file could be indexed (see failures)")
        check_cancel(store, job_id)
        builder.commit()
    return indexed


def demo_marker(root: Path, model_id: str) -> Path:
    """Written once the demo set is indexed for a model, so it is indexed only once."""
    return root / f".indexed-{model_id}"


def committed(
    store: JobStore, job_id: str, root: Path, target: ReindexTarget, indexed: int
) -> None:
    job = store.get(job_id)
    if job is not None and job.kind == "demo":
        demo_marker(root, target.embedder.model_id).touch()
    end_job(store, job_id, target, state.SUCCEEDED, indexed=indexed)


def run_reindex(
    store: JobStore,
    job_id: str,
    root: Path,
    target: ReindexTarget,
    *,
    inside: list[Path],
    uploaded: bool,
) -> None:
    """The whole job in this thread: plan, every chunk, commit. Never raises: the outcome
    is in the job's state. `inside`: folders every file's real path must stay in (links
    out are refused); `uploaded`: `root` holds an uploaded batch (in the job's folder)."""
    try:
        chunks = plan(
            store, job_id, root, chunk_size=target.settings.reindex_chunk, uploaded=uploaded
        )
        for number, files in enumerate(chunks):
            run_chunk(store, job_id, number, root, files, target, inside)
        indexed = commit_parts(store, job_id, len(chunks), target)
    except Exception as exc:
        end_on_error(store, job_id, target, root, exc)
        return
    committed(store, job_id, root, target, indexed)
