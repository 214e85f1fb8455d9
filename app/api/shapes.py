"""The indexed shapes: add, list, read, thumbnail, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Response

from app import schemas
from app.api.deps import (
    ERRORS,
    NOT_FOUND,
    READ,
    WRITE,
    AdmissionDep,
    MeshFile,
    ServiceDep,
    not_found,
    read_mesh,
)

router = APIRouter(tags=["shapes"])


@router.post(
    "/shapes",
    response_model=schemas.ShapeCreated,
    status_code=201,
    dependencies=WRITE,
    responses={**ERRORS, 200: {"model": schemas.ShapeCreated, "description": "a duplicate"}},
)
async def add_shape(
    service: ServiceDep,
    admission: AdmissionDep,
    response: Response,
    file: MeshFile,
    name: Annotated[str | None, Form(description="defaults to the file name")] = None,
    label: Annotated[str | None, Form(description="the shape's class, if known")] = None,
) -> schemas.ShapeCreated:
    """Index a mesh. An identical file (same sha256) already indexed is not added again:
    the answer is that shape with `duplicate: true` (status 200 instead of 201)."""
    upload = await read_mesh(file, service.settings, {})
    added = await service.add(
        upload.source, upload.filename, admission, name=name or None, label=label or None
    )
    if added.duplicate:
        response.status_code = 200
    return schemas.ShapeCreated(
        id=added.record.id, duplicate=added.duplicate, shape=schemas.Shape.of(added.record)
    )


@router.get("/shapes", response_model=schemas.ShapePage, dependencies=READ)
def list_shapes(
    service: ServiceDep,
    label: str | None = None,
    offset: Annotated[int, Query(ge=0, le=schemas.MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> schemas.ShapePage:
    """Indexed shapes, oldest first, optionally only those with `label`."""
    total, records = service.list_shapes(label=label or None, offset=offset, limit=limit)
    return schemas.ShapePage(
        total=total, offset=offset, limit=limit, shapes=[schemas.Shape.of(r) for r in records]
    )


@router.get(
    "/shapes/{shape_id}", response_model=schemas.Shape, dependencies=READ, responses=NOT_FOUND
)
def get_shape(service: ServiceDep, shape_id: schemas.ShapeId) -> schemas.Shape:
    record = service.get(shape_id)
    if record is None:
        raise not_found(f"shape {shape_id}")
    return schemas.Shape.of(record)


@router.get(
    "/shapes/{shape_id}/thumbnail.png",
    dependencies=READ,
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **NOT_FOUND},
)
def get_thumbnail(service: ServiceDep, shape_id: schemas.ShapeId) -> Response:
    """A small PNG of the shape's rendered views."""
    png = service.thumbnail(shape_id)
    if png is None:
        raise not_found(f"thumbnail of shape {shape_id}")
    # Private when reads need a key: no shared cache may hand it to someone without one.
    scope = "private" if service.settings.read_key else "public"
    return Response(
        png, media_type="image/png", headers={"Cache-Control": f"{scope}, max-age=3600"}
    )


@router.delete(
    "/shapes/{shape_id}",
    response_model=schemas.Deleted,
    dependencies=WRITE,
    responses={401: ERRORS[401], **NOT_FOUND},
)
def delete_shape(service: ServiceDep, shape_id: schemas.ShapeId) -> schemas.Deleted:
    if not service.delete(shape_id):
        raise not_found(f"shape {shape_id}")
    return schemas.Deleted(id=shape_id, deleted=True)
