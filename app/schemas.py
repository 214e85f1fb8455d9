"""The HTTP edge: every response body as a pydantic model (they make the OpenAPI schema),
built from the service's domain objects with `.of(...)`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, Field, StringConstraints

if TYPE_CHECKING:
    from app.jobs import Job
    from index import SearchHit, ShapeRecord

# Ids are SQLite integers: anything larger is not an id (422, not a server error).
MAX_ID = 2**63 - 1
ShapeId = Annotated[int, Interval(ge=1, le=MAX_ID)]
JobId = Annotated[str, StringConstraints(max_length=64)]


def thumbnail_url(shape_id: int) -> str:
    return f"/shapes/{shape_id}/thumbnail.png"


class ErrorOut(BaseModel):
    detail: str = Field(examples=["this is a PNG image, not a mesh; send OFF, OBJ, ..."])


class Shape(BaseModel):
    id: int
    name: str
    label: str | None
    sha256: str
    source: str = Field(description='"upload", "reindex" or "demo"')
    model_id: str
    added_at: datetime
    updated_at: datetime
    thumbnail_url: str

    @classmethod
    def of(cls, record: ShapeRecord) -> Shape:
        return cls(
            id=record.id,
            name=record.name,
            label=record.label,
            sha256=record.sha256,
            source=record.source,
            model_id=record.model_id,
            added_at=record.added_at,
            updated_at=record.updated_at,
            thumbnail_url=thumbnail_url(record.id),
        )


class ShapePage(BaseModel):
    total: int = Field(description="shapes matching the filter, over all pages")
    offset: int
    limit: int
    shapes: list[Shape]


class ShapeCreated(BaseModel):
    id: int
    duplicate: bool = Field(
        description="true when an identical file (same sha256) was already indexed: "
        "`id` is that shape and nothing was added"
    )
    shape: Shape


class Deleted(BaseModel):
    id: int
    deleted: bool


class Hit(BaseModel):
    id: int
    name: str
    label: str | None
    score: float = Field(description="cosine similarity of the descriptors, in [-1, 1]")
    thumbnail_url: str

    @classmethod
    def of(cls, hit: SearchHit) -> Hit:
        return cls(
            id=hit.id,
            name=hit.record.name,
            label=hit.record.label,
            score=round(float(hit.score), 6),
            thumbnail_url=thumbnail_url(hit.id),
        )


class SearchOut(BaseModel):
    results: list[Hit]
    timings_ms: dict[str, float]


class ClassProbability(BaseModel):
    label: str
    probability: float


class NeighborVote(BaseModel):
    label: str | None = Field(
        description="the label most of the k nearest labelled shapes carry (ties: the higher "
        "summed score); unlabelled shapes are skipped among the 4k nearest"
    )
    votes: dict[str, int] = Field(description="label -> how many of the k nearest carry it")
    k: int
    shapes: list[Hit]


class ClassifyOut(BaseModel):
    label: str | None = Field(
        description='the class; null means "I don\'t know": the head is unsure and no '
        "labelled shape is near (thresholds from the model's calibration on held-out families)"
    )
    label_source: Literal["head", "neighbours", "unknown"] = Field(
        description="who gave the label: the network head (sure enough), the nearest labelled "
        "shapes (the head unsure, a labelled shape near), or unknown (no label)"
    )
    reason: str = Field(description="why this label (or none), in one sentence")
    probabilities: list[ClassProbability] = Field(description="the head's top 5 classes")
    neighbors: NeighborVote
    model_id: str
    views_png: str = Field(description="the rendered views as one PNG, a data: URL")
    timings_ms: dict[str, float]


class JobFailure(BaseModel):
    file: str
    error: str


class JobOut(BaseModel):
    id: str
    kind: str
    source: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    done: int
    total: int
    indexed: int
    failed: int
    failures: list[JobFailure] = Field(description="the first 1000 files that failed")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            source=job.source,
            state=job.state,
            done=job.done,
            total=job.total,
            indexed=job.indexed,
            failed=job.failed,
            failures=[JobFailure(**failure) for failure in job.failures],
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobList(BaseModel):
    jobs: list[JobOut]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    model_loaded: bool
    model_id: str | None
    random_weights: bool
    index_open: bool
    shapes: int | None
    jobs_backend: str = Field(description='"redis" or "in-process"')
    redis_reachable: bool | None
    workers: int | None = Field(
        None, description="live `gmvit worker` processes (with Redis; null in-process)"
    )
    detail: str | None = Field(
        None,
        description="why the service is not ready, or what needs doing (an index that "
        "other weights built, waiting for a reindex)",
    )

    @classmethod
    def starting(cls, backend: str) -> Ready:
        return cls(
            ready=False,
            model_loaded=False,
            model_id=None,
            random_weights=False,
            index_open=False,
            shapes=None,
            jobs_backend=backend,
            redis_reachable=None,
            detail="starting: loading the model and index",
        )


class Formats(BaseModel):
    extensions: list[str] = Field(description="file extensions of the meshes it reads")
