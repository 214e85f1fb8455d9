"""API keys: writes need `X-API-Key` == GMVIT_API_KEY; reads too when GMVIT_READ_KEY is set."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from app.settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


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
    key: str | None = Depends(api_key_header), settings: Settings = Depends(get_settings)
) -> None:
    if settings.api_key is None:
        raise _unauthorized(
            "writes are disabled: the server has no API key configured (set GMVIT_API_KEY)"
        )
    if not _matches(key, settings.api_key):
        raise _unauthorized("this request changes data: send the API key as X-API-Key")


def require_read(
    key: str | None = Depends(api_key_header), settings: Settings = Depends(get_settings)
) -> None:
    if settings.read_key is None:
        return
    if not _matches(key, settings.read_key, settings.api_key):
        raise _unauthorized("reads need a key on this server: send it as X-API-Key")
