"""Asking about a mesh: what is it (`/classify`), which indexed shapes look like it
(`/search`)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from app import pipeline, schemas
from app.api.deps import (
    ERRORS,
    NOT_FOUND,
    READ,
    AdmissionDep,
    MeshFile,
    ServiceDep,
    not_found,
    read_mesh,
)

router = APIRouter(tags=["shapes"])
DEFAULT_NEIGHBORS = 5


def _total(timings: dict[str, float], start: float) -> dict[str, float]:
    timings["total"] = round((time.perf_counter() - start) * 1000.0, 2)
    return timings


@router.post("/classify", response_model=schemas.ClassifyOut, dependencies=READ, responses=ERRORS)
async def classify(
    service: ServiceDep,
    admission: AdmissionDep,
    file: MeshFile,
    top_k: Annotated[int, Form(ge=1, le=100, description="neighbours in the vote")] = (
        DEFAULT_NEIGHBORS
    ),
) -> schemas.ClassifyOut:
    """The class of a mesh, or null ("I don't know") with the reason: the network head's top
    5 and a vote of the k nearest labelled shapes in the index decide it; with the rendered
    views and per-stage timings."""
    start = time.perf_counter()
    timings: dict[str, float] = {}
    upload = await read_mesh(file, service.settings, timings)
    result = await service.classify(upload.source, upload.filename, top_k, timings, admission)
    probabilities = [
        schemas.ClassProbability(label=label, probability=round(p, 6))
        for label, p in result.probabilities
    ]
    vote = result.vote
    return schemas.ClassifyOut(
        label=result.decision.label,
        label_source=result.decision.source,
        reason=result.decision.reason,
        probabilities=probabilities,
        neighbors=schemas.NeighborVote(
            label=vote.label,
            votes=vote.votes,
            k=vote.k,
            shapes=[schemas.Hit.of(hit) for hit in vote.hits],
        ),
        model_id=service.embedder.model_id,
        views_png=pipeline.png_data_url(result.views_png),
        timings_ms=_total(timings, start),
    )


@router.post(
    "/search",
    response_model=schemas.SearchOut,
    dependencies=READ,
    responses={**ERRORS, **NOT_FOUND},
)
async def search(
    service: ServiceDep,
    admission: AdmissionDep,
    file: Annotated[list[UploadFile] | None, File(description="a mesh to search with")] = None,
    shape_id: Annotated[
        schemas.ShapeId | None, Form(description="or: an indexed shape's id")
    ] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    label: Annotated[str | None, Form(description="only shapes with this label")] = None,
) -> schemas.SearchOut:
    """The nearest indexed shapes to an uploaded mesh or to an indexed shape (which is
    left out of its own results)."""
    if (file is None) == (shape_id is None):
        raise HTTPException(400, detail="send either a mesh as `file` or a `shape_id`, not both")
    start = time.perf_counter()
    timings: dict[str, float] = {}
    if file is not None:
        upload = await read_mesh(file, service.settings, timings)
        hits = await service.search_mesh(
            upload.source, upload.filename, top_k, label or None, timings, admission
        )
    else:
        hits = await service.search_shape(shape_id, top_k, label or None, timings)
        if hits is None:
            raise not_found(f"shape {shape_id}")
    return schemas.SearchOut(
        results=[schemas.Hit.of(hit) for hit in hits], timings_ms=_total(timings, start)
    )
