"""Reindex jobs: start one (a server folder or uploaded files), follow it, cancel it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from app import schemas
from app.api.deps import ERRORS, NOT_FOUND, READ, WRITE, ServiceDep, not_found
from app.jobs import FolderRefused
from app.uploads import read_upload

router = APIRouter(tags=["jobs"])


@router.post(
    "/reindex",
    response_model=schemas.JobOut,
    status_code=202,
    dependencies=WRITE,
    responses={
        400: {"model": schemas.ErrorOut},
        401: ERRORS[401],
        403: {"model": schemas.ErrorOut},
        413: ERRORS[413],
    },
)
async def reindex(
    service: ServiceDep,
    folder: Annotated[
        str | None, Form(description="a folder on the server, under GMVIT_ALLOWED_ROOTS")
    ] = None,
    files: Annotated[
        list[UploadFile] | None,
        File(description="or: mesh files; their folder names (class/x.off) become labels"),
    ] = None,
) -> schemas.JobOut:
    """Rebuild the index from a folder in the ModelNet layout (`<class>/[train|test/]x.off`,
    labels from the class folders) or from uploaded files, as a background job. The new
    index replaces the old one atomically when the job succeeds (shapes added while it ran
    are kept); until then, and if it fails or is cancelled, the old one serves."""
    if (folder is None) == (not files):
        raise HTTPException(400, detail="send either a server-side `folder` or `files`")
    if folder is not None:
        try:
            job = await asyncio.to_thread(service.reindex_folder, folder)
        except FolderRefused as exc:
            raise HTTPException(403, detail=str(exc)) from None
        return schemas.JobOut.of(job)

    async def uploaded() -> AsyncIterator[tuple[str | None, bytes]]:
        for upload in files:
            yield upload.filename, await read_upload(upload, service.settings.max_upload_bytes)

    try:
        job = await service.reindex_uploaded(uploaded())
    except ValueError as exc:  # a file name no filesystem can store
        raise HTTPException(400, detail=str(exc)) from None
    return schemas.JobOut.of(job)


@router.get("/jobs", response_model=schemas.JobList, dependencies=READ)
def list_jobs(service: ServiceDep) -> schemas.JobList:
    """The 50 most recent jobs, newest first."""
    return schemas.JobList(jobs=[schemas.JobOut.of(job) for job in service.recent_jobs()])


@router.get("/jobs/{job_id}", response_model=schemas.JobOut, dependencies=READ, responses=NOT_FOUND)
def get_job(service: ServiceDep, job_id: schemas.JobId) -> schemas.JobOut:
    job = service.get_job(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    return schemas.JobOut.of(job)


@router.delete(
    "/jobs/{job_id}",
    response_model=schemas.JobOut,
    dependencies=WRITE,
    responses={401: ERRORS[401], **NOT_FOUND},
)
def cancel_job(service: ServiceDep, job_id: schemas.JobId) -> schemas.JobOut:
    """Cancel a queued or running job; the index it was building is thrown away."""
    job = service.cancel_job(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    return schemas.JobOut.of(job)
