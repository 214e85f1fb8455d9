"""The HTTP edge: every response body as a pydantic model (they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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
    label: str = Field(description="the network head's top class")
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
    detail: str | None = None
