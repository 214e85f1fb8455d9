"""What the routes share: the service, API-key checks, the common error responses, and
reading an uploaded mesh within its limit."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, File, HTTPException, Request, UploadFile, status
from fastapi.security import APIKeyHeader

from app import metrics, schemas
from app.pool import Admission
from app.service import ShapeService
from app.settings import Settings
from app.uploads import MeshUpload, read_mesh_parts
from renderer.layout import MESH_EXTENSIONS

# One header, two schemes in the OpenAPI document: every write needs GMVIT_API_KEY; a read
# needs a key only where the server sets GMVIT_READ_KEY (app.main marks READ_SCHEME optional).
READ_SCHEME = "ReadKey"
write_key_header = APIKeyHeader(
    name="X-API-Key", scheme_name="WriteKey", auto_error=False, description="GMVIT_API_KEY"
)
read_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name=READ_SCHEME,
    auto_error=False,
    description="GMVIT_READ_KEY or GMVIT_API_KEY; needed only where GMVIT_READ_KEY is set",
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> ShapeService:
    service = request.app.state.service
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="the service is starting")
    return service


ServiceDep = Annotated[ShapeService, Depends(get_service)]


def get_admission(request: Request) -> Admission:
    """The request's place in the render pool, given at the door (AdmissionMiddleware)."""
    return request.state.admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _matches(given: str | None, *expected: str | None) -> bool:
    if not given:
        return False
    return any(
        key is not None and hmac.compare_digest(given.encode(), key.encode()) for key in expected
    )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "X-API-Key"}
    )


def require_write(
    settings: SettingsDep, key: Annotated[str | None, Depends(write_key_header)] = None
) -> None:
    """Writes need X-API-Key equal to GMVIT_API_KEY (refused when none is configured)."""
    if settings.api_key is None:
        raise _unauthorized(
            "writes are disabled: the server has no API key configured (set GMVIT_API_KEY)"
        )
    if not _matches(key, settings.api_key):
        raise _unauthorized("this request changes data: send the API key as X-API-Key")


def require_read(
    settings: SettingsDep, key: Annotated[str | None, Depends(read_key_header)] = None
) -> None:
    """Reads need X-API-Key (GMVIT_READ_KEY or GMVIT_API_KEY) when GMVIT_READ_KEY is set."""
    if settings.read_key is None:
        return
    if not _matches(key, settings.read_key, settings.api_key):
        raise _unauthorized("reads need a key on this server: send it as X-API-Key")


READ = [Depends(require_read)]
WRITE = [Depends(require_write)]

ERRORS = {
    400: {"model": schemas.ErrorOut, "description": "parts that make no sense together"},
    401: {"model": schemas.ErrorOut, "description": "missing or wrong X-API-Key"},
    413: {"model": schemas.ErrorOut, "description": "upload over the size limit"},
    422: {"model": schemas.ErrorOut, "description": "the file is not a mesh we can render"},
    503: {"model": schemas.ErrorOut, "description": "every render worker busy; Retry-After"},
}
NOT_FOUND = {404: {"model": schemas.ErrorOut}}

MeshFile = Annotated[
    list[UploadFile],
    File(
        description=f"a mesh file ({', '.join(MESH_EXTENSIONS)}; a .zip of a mesh and its "
        "files), or several parts: a mesh and the files it names (a .gltf and its .bin)"
    ),
]


async def read_mesh(
    files: list[UploadFile], settings: Settings, timings: dict[str, float]
) -> MeshUpload:
    with metrics.stage("read", timings):
        return await read_mesh_parts(files, settings.max_upload_bytes)


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")
