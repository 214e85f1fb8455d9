"""The HTTP client behind `gmvit classify`, `search`, `index` and `reindex`.

They talk to a running server (`--url`, default $GMVIT_URL or http://127.0.0.1:8000) with
the key in $GMVIT_API_KEY. A server that does not answer, or answers 4xx/5xx, becomes a
`CLIError`: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import httpx

from app.cli import CLIError, existing_file

DEFAULT_URL = "http://127.0.0.1:8000"
BUSY_RETRIES = 5


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("GMVIT_URL", DEFAULT_URL),
        help="the server (default: $GMVIT_URL or %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        return cls(args.url, os.environ.get("GMVIT_API_KEY") or None)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(BUSY_RETRIES + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise CLIError(f"cannot reach the gmvit server at {self.url} ({exc})") from None
            if response.status_code != 503 or attempt == BUSY_RETRIES:
                break
            # The server's render pool is full: it says when to come back.
            time.sleep(float(response.headers.get("Retry-After", "1")))
            for value in kwargs.get("files", {}).values():
                value[1].seek(0)
        if response.is_error:
            try:
                detail = response.json()["detail"]
            except (ValueError, KeyError, TypeError):
                detail = response.text.strip()[:200] or response.reason_phrase
            raise CLIError(f"{response.status_code} from {method} {path}: {detail}")
        return response.json()

    def upload(self, path: str, route: str, fields: dict[str, Any]) -> Any:
        file = existing_file(path)
        with file.open("rb") as handle:
            data = {k: str(v) for k, v in fields.items() if v is not None}
            return self.call("POST", route, files={"file": (file.name, handle)}, data=data)


def print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2))


def print_hits(hits: list[dict[str, Any]]) -> None:
    for rank, hit in enumerate(hits, start=1):
        label = hit["label"] or "-"
        print(f"{rank:3d}. {hit['score']:.4f}  #{hit['id']:<6d} {label:<14s} {hit['name']}")
