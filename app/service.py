"""The service layer: what the shape service does, as calls that return domain objects.

The routes in `app.api` only translate HTTP into these calls and their results into the
response models of `app.schemas`. Mesh work (render, embed) runs on the bounded
`RenderPool` (503 when full); index calls, which may wait for another process's write
lock, run on threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import metrics, pipeline, rerank, resources
from app.batcher import BatchingEmbedder
from app.jobs import (
    InProcessJobs,
    Job,
    JobBackend,
    JobFolders,
    ReindexTarget,
    RQJobs,
    demo_marker,
    resolve_folder,
    save_upload,
)
from app.jobs import state as job_state
from app.pool import Admission, RenderPool
from app.settings import Settings
from gmvit import Embedding
from gmvit.openset import Decision, decide
from index import SearchHit, ShapeIndex, ShapeRecord, indexes_of_other_models
from renderer.rigs import get_rig

log = logging.getLogger("gmvit.app")

# A mesh as the renderer takes it: one file's bytes, or several named files.
MeshSource = bytes | dict[str, bytes]

TOP_CLASSES = 5
PREVIEW_PX = 512


@dataclass(frozen=True)
class NeighborVote:
    label: str | None  # what most of the k nearest labelled shapes are
    votes: dict[str, int]
    k: int
    hits: list[SearchHit]


@dataclass(frozen=True)
class Classification:
    decision: Decision  # the label, or None for "I don't know", and why
    probabilities: list[tuple[str, float]]  # the head's top classes, best first
    vote: NeighborVote
    views_png: bytes
    timings: dict[str, float]


@dataclass(frozen=True)
class Added:
    record: ShapeRecord
    duplicate: bool  # the same bytes were indexed already: `record` is that shape


@dataclass(frozen=True)
class Readiness:
    ready: bool
    shapes: int
    redis_reachable: bool | None
    workers: int | None
    detail: str | None


class ShapeService:
    """Everything a request needs, opened once at startup and closed at shutdown."""

    def __init__(
        self,
        settings: Settings,
        embedder: BatchingEmbedder,
        index: ShapeIndex,
        jobs: JobBackend,
        *,
        random_weights: bool,
    ) -> None:
        self.settings = settings
        self.embedder = embedder  # batched: requests and in-process jobs share its passes
        self.index = index
        self.jobs = jobs
        self.random_weights = random_weights
        self.num_views = len(get_rig(embedder.rig).positions)  # of every thumbnail
        self.stale_indexes: dict[str, int] = {}  # model id -> shapes, of other weights
        self.pool = RenderPool(settings.workers, settings.queue)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="job-reaper", daemon=True)
        self._reaper.start()

    @classmethod
    def open(cls, settings: Settings) -> ShapeService:
        weights = resources.weights_path(settings)
        embedder = resources.load_embedder(settings, weights)
        index = resources.open_index(settings, embedder.model_id)
        folders = JobFolders(settings.jobs_dir)
        if settings.redis_url:
            jobs: JobBackend = RQJobs(settings.redis_url, folders, settings.job_stale_s)
        else:
            target = ReindexTarget(settings, embedder, index, folders)
            jobs = InProcessJobs(target)
        service = cls(
            settings,
            embedder,
            index,
            jobs,
            random_weights=weights == resources.random_weights_path(settings),
        )
        resources.import_thumbnails(settings, index)
        service.stale_indexes = indexes_of_other_models(settings.index_root, embedder.model_id)
        notice = service.stale_notice()
        if notice:
            log.warning("%s", notice)
        return service

    def stale_notice(self) -> str | None:
        """What to do about indexes that other weights built, when this one is empty."""
        stale = {m: n for m, n in self.stale_indexes.items() if n}
        if not stale or self.index.count():
            return None
        others = ", ".join(f"{m} ({n} shapes)" for m, n in sorted(stale.items()))
        return (
            f"the index of model {self.embedder.model_id} is empty, but other weights built "
            f"an index here: {others}; their descriptors cannot be searched with this model. "
            "Rebuild the collection with `gmvit reindex <folder of your meshes>` (or POST "
            "/reindex); the old index stays on disk untouched"
        )

    def close(self) -> None:
        self._stop.set()
        self._reaper.join()
        self.jobs.close()
        self.pool.shutdown()
        self.embedder.close()
        self.index.close()

    def _reap(self) -> None:
        while not self._stop.wait(max(1.0, self.settings.job_stale_s / 3)):
            try:
                self.jobs.reap()
            except Exception as exc:  # Redis away: try again next time
                log.warning("could not look for lost jobs: %s", exc)

    # -- mesh work -------------------------------------------------------------------

    async def describe(
        self,
        data: MeshSource,
        filename: str | None,
        timings: dict[str, float],
        admission: Admission,
        *,
        preview_px: int | None = None,
    ) -> tuple[pipeline.Described, bytes | None]:
        """Render a mesh on the bounded pool and embed it, under a place the request was
        given at the door (`RenderPool.admit`); with `preview_px`, also the views as one PNG
        at most that wide. The pool thread hands the views to the batcher and is free for
        the next request: concurrent requests' shapes share forward passes. `queue` in the
        timings is the wait for a free pool thread, `embed` the wait for the forward pass
        once the views (and the preview) are drawn."""
        admitted = time.perf_counter()

        def draw() -> tuple[tuple[np.ndarray, bytes | None], Future[Embedding]]:
            waited = time.perf_counter() - admitted
            metrics.STAGE_SECONDS.labels("queue").observe(waited)
            timings["queue"] = round(waited * 1000.0, 2)
            views = pipeline.render(
                data, self.embedder, self.settings, filename=filename, timings=timings
            )
            embedding = self.embedder.submit(views)
            if preview_px is None:
                return (views, None), embedding
            with metrics.stage("preview", timings):
                return (views, pipeline.grid_png(views, max_px=preview_px)), embedding

        (views, preview), embedding = await self.pool.run(admission, draw)
        with metrics.stage("embed", timings):
            embedded = await asyncio.wrap_future(embedding)
        return pipeline.described(views, embedded, timings), preview

    async def classify(
        self,
        data: MeshSource,
        filename: str | None,
        k: int,
        timings: dict[str, float],
        admission: Admission,
    ) -> Classification:
        """The head's top classes, a vote of the k nearest labelled shapes, and the open-set
        decision from both (`gmvit.openset.decide`, with the model's thresholds)."""
        described, views_png = await self.describe(
            data, filename, timings, admission, preview_px=PREVIEW_PX
        )
        with metrics.stage("search", timings):
            vote = await asyncio.to_thread(self.neighbor_vote, described.descriptor, k)
        order = np.argsort(-described.probabilities)[:TOP_CLASSES]
        probabilities = [
            (self.embedder.class_names[i], float(described.probabilities[i])) for i in order
        ]
        decision = decide(
            described.probabilities,
            self.embedder.class_names,
            self.embedder.open_set,
            neighbour_similarity=float(vote.hits[0].score) if vote.hits else None,
            neighbour_label=vote.label,
        )
        return Classification(decision, probabilities, vote, views_png, timings)

    def neighbor_vote(self, vector: np.ndarray, k: int) -> NeighborVote:
        """The k nearest labelled shapes and the label most of them carry (ties: higher
        summed score)."""
        candidates = self.index.search(vector, k=min(4 * k, 400))
        labelled = [hit for hit in candidates if hit.record.label is not None][:k]
        votes = Counter(hit.record.label for hit in labelled)
        scores: Counter[str] = Counter()
        for hit in labelled:
            scores[hit.record.label] += float(hit.score)
        winner = max(votes, key=lambda name: (votes[name], scores[name])) if votes else None
        return NeighborVote(winner, dict(votes), k, labelled)

    async def search_mesh(
        self,
        data: MeshSource,
        filename: str | None,
        k: int,
        label: str | None,
        timings: dict[str, float],
        admission: Admission,
    ) -> list[SearchHit]:
        """The k nearest shapes to an uploaded mesh (optionally only with `label`), near-ties
        settled by the views (`app.rerank`)."""
        described, _ = await self.describe(data, filename, timings, admission)

        def query() -> np.ndarray:
            return rerank.view_signature(pipeline.grid_image(described.views), len(described.views))

        with metrics.stage("search", timings):
            return await asyncio.to_thread(self.ranked, described.descriptor, k, query, label=label)

    async def search_shape(
        self, shape_id: int, k: int, label: str | None, timings: dict[str, float]
    ) -> list[SearchHit] | None:
        """The k nearest shapes to an indexed one (itself left out), near-ties settled by the
        views of its thumbnail; None: no such shape."""
        vector = await asyncio.to_thread(self.index.vector, shape_id)
        if vector is None:
            return None

        def query() -> np.ndarray | None:
            png = self.index.thumbnail(shape_id)
            return None if png is None else rerank.view_signature(png, self.num_views)

        with metrics.stage("search", timings):
            return await asyncio.to_thread(
                self.ranked, vector, k, query, label=label, exclude=shape_id
            )

    def ranked(
        self,
        vector: np.ndarray,
        k: int,
        query: Callable[[], np.ndarray | None],
        *,
        label: str | None = None,
        exclude: int | None = None,
    ) -> list[SearchHit]:
        """The index's k best hits, those within `rerank_margin` of the best ordered by their
        thumbnails' views against `query()` (the query's view signature, made only when
        there is a near-tie to settle)."""
        margin = self.settings.rerank_margin
        fetch = max(k, rerank.CANDIDATES) if margin > 0 else k
        hits = self.index.search(vector, fetch, label=label, exclude=exclude)

        def signatures_of(tied: list[int]) -> dict[int, np.ndarray]:
            thumbnails = self.index.thumbnails([hits[i].id for i in tied])
            return {
                i: rerank.view_signature(thumbnails[hits[i].id], self.num_views)
                for i in tied
                if hits[i].id in thumbnails
            }

        scores = [hit.score for hit in hits]
        settled = rerank.settle_near_ties(
            hits, scores, margin, query, signatures_of, self.embedder.rig
        )
        return settled[:k]

    async def add(
        self,
        data: MeshSource,
        filename: str | None,
        admission: Admission,
        *,
        name: str | None,
        label: str | None,
    ) -> Added:
        """Index a mesh, unless the same bytes are indexed already."""
        sha256 = pipeline.sha256_of(data)
        existing = await asyncio.to_thread(self.index.find_sha256, sha256)
        if existing is not None:
            return Added(existing, duplicate=True)
        described, thumbnail = await self.describe(
            data, filename, {}, admission, preview_px=pipeline.THUMBNAIL_PX
        )
        # The same file may have been added meanwhile (by this process or another).
        record, added = await asyncio.to_thread(
            self.index.add_if_new,
            described.descriptor,
            name=name or filename or sha256[:12],
            sha256=sha256,
            source="upload",
            label=label,
            thumbnail=thumbnail,
        )
        return Added(record, duplicate=not added)

    # -- the collection --------------------------------------------------------------

    def list_shapes(
        self, *, label: str | None, offset: int, limit: int
    ) -> tuple[int, list[ShapeRecord]]:
        return self.index.count(label=label), self.index.list(
            label=label, offset=offset, limit=limit
        )

    def get(self, shape_id: int) -> ShapeRecord | None:
        return self.index.get(shape_id)

    def thumbnail(self, shape_id: int) -> bytes | None:
        return self.index.thumbnail(shape_id)

    def delete(self, shape_id: int) -> bool:
        return self.index.remove(shape_id)

    # -- jobs ------------------------------------------------------------------------

    def _new_job(self, kind: str, source: str, job_id: str | None = None) -> Job:
        metrics.JOBS_SUBMITTED.labels(kind).inc()
        return Job(
            id=job_id or job_state.new_job_id(),
            kind=kind,
            source=source,
            since_id=self.index.next_shape_id(),
        )

    def reindex_folder(self, folder: str) -> Job:
        """Rebuild the index from a folder on the server (FolderRefused: not allowed)."""
        root = resolve_folder(folder, self.settings.allowed_roots)
        inside = [Path(r).expanduser().resolve() for r in self.settings.allowed_roots]
        job = self._new_job("reindex", str(root))
        return self.jobs.submit(job, root, inside=inside, uploaded=False)

    async def reindex_uploaded(self, files: AsyncIterator[tuple[str | None, bytes]]) -> Job:
        """Rebuild the index from uploaded files (their folders name their classes). They
        are kept in the job's own folder until the job ends."""
        job_id = job_state.new_job_id()
        folder = await asyncio.to_thread(self.jobs.new_folder, job_id)
        root = folder / "files"
        try:
            number = 0
            async for filename, data in files:
                await asyncio.to_thread(save_upload, root, number, filename, data)
                number += 1
        except BaseException:
            await asyncio.to_thread(self.jobs.folders.remove, job_id)
            raise
        job = await asyncio.to_thread(self._new_job, "reindex", "upload", job_id)
        return await asyncio.to_thread(self.jobs.submit, job, root, inside=[root], uploaded=True)

    def recent_jobs(self) -> list[Job]:
        return self.jobs.store.recent()

    def get_job(self, job_id: str) -> Job | None:
        return self.jobs.store.get(job_id)

    def cancel_job(self, job_id: str) -> Job | None:
        return job_state.cancel(self.jobs.store, job_id)

    def start_demo(self) -> Job | None:
        """On the first start for a model, index a small synthetic set so search answers.

        `DATA_DIR/demo/shapes/<class>/train/*.off` are indexed (labels from the folders);
        `DATA_DIR/demo/examples/<class>_NNNN.off`, one held-out shape per class, are left
        out for trying classify and search.
        """
        settings = self.settings
        root = settings.data_path / "demo"
        shapes = root / "shapes"
        marker = demo_marker(shapes, self.embedder.model_id)
        if not settings.demo or self.index.count() or marker.exists():
            return None
        if not root.is_dir():
            self._write_demo(root)
        log.info("indexing the synthetic demo set in %s (a background job)", shapes)
        job = self._new_job("demo", "demo")
        return self.jobs.submit(job, shapes, inside=[shapes], uploaded=False)

    def _write_demo(self, root: Path) -> None:
        from gmvit.data import synth

        staging = self.settings.data_path / f".demo-{uuid.uuid4().hex}"
        synth.generate(
            staging / "shapes",
            seed=0,
            train_per_class=self.settings.demo_per_class,
            test_per_class=1,
            progress=False,
        )
        (staging / "examples").mkdir()
        for held_out in sorted((staging / "shapes").glob("*/test/*")):
            held_out.rename(staging / "examples" / held_out.name)
            held_out.parent.rmdir()
        try:
            staging.rename(root)
        except OSError:  # another replica wrote it first: theirs is the same set
            import shutil

            shutil.rmtree(staging, ignore_errors=True)

    # -- health ----------------------------------------------------------------------

    def readiness(self) -> Readiness:
        shapes = self.index.count()
        if self.jobs.name != "redis":
            return Readiness(True, shapes, None, None, self.stale_notice())
        try:
            workers = self.jobs.workers()
        except Exception as exc:
            return Readiness(False, shapes, False, None, f"redis unreachable: {exc}")
        if not workers:
            detail = "no gmvit worker is alive: reindex jobs would wait (start `gmvit worker`)"
            return Readiness(False, shapes, True, 0, detail)
        return Readiness(True, shapes, True, workers, self.stale_notice())
