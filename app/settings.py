"""Service settings, read from `GMVIT_*` environment variables (pydantic-settings).

Defaults run on one laptop: data in `./var`, the shipped GMViT-mini, jobs in-process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from renderer.limits import LoadLimits

# The renderer's own bounds are the defaults of those the service lets you set.
_LOAD = LoadLimits()

# The shipped student, found from any working directory of a source checkout.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "gmvit-mini-synth10.pt"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GMVIT_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="index, metadata, thumbnails, job files")
    weights: Path = Field(
        DEFAULT_WEIGHTS,
        description="student checkpoint; while the default file is missing, a random mini",
    )
    redis_url: str | None = Field(None, description="RQ job queue; unset = in-process jobs")
    api_key: str | None = Field(None, description="X-API-Key needed for every write")
    read_key: str | None = Field(None, description="X-API-Key needed for reads when set")
    max_upload_bytes: int = Field(
        _LOAD.max_bytes, gt=0, description="per uploaded mesh (with the files it names)"
    )
    max_batch_upload_bytes: int = Field(
        1024 * 2**20, gt=0, description="whole body of a POST /reindex with uploaded files"
    )
    max_faces: int = Field(_LOAD.max_faces, gt=0, description="per mesh, checked by the renderer")
    render_timeout_s: float = Field(
        _LOAD.timeout_s, gt=0, description="time to load (parse) one mesh"
    )
    upload_timeout_s: float = Field(
        60.0, gt=0, description="time a request body may take to arrive (408 after)"
    )
    workers: int = Field(2, ge=1, description="render threads of the server")
    queue: int = Field(4, ge=0, description="requests admitted beyond the busy workers before 503")
    threads: int | None = Field(None, ge=1, description="torch threads of the embedder")
    embed_batch: int = Field(
        8, ge=1, description="shapes at most in one forward pass (requests and jobs share it)"
    )
    embed_wait_ms: float = Field(
        5.0, ge=0, description="how long a forward waits for more shapes to batch"
    )
    device: Literal["cpu", "cuda"] = Field(
        "cpu",
        description="where the embedder runs; cuda also means EGL rendering "
        "(PYOPENGL_PLATFORM=egl) and bf16 unless GMVIT_PRECISION says otherwise",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="embedder precision; auto = bf16 autocast on cuda, fp32 on cpu"
    )
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="server-side folders POST /reindex may read"
    )
    index_factory: str = Field("Flat", description="FAISS factory string of new indexes")
    index_ef_search: int = Field(
        64, ge=1, description="HNSW search-time candidate list: higher = better recall, slower"
    )
    index_nprobe: int = Field(
        16, ge=1, description="IVF lists probed per search: higher = better recall, slower"
    )
    rerank_margin: float = Field(
        0.001,
        ge=0.0,
        le=2.0,
        description="/search: candidates within this cosine of the best are ordered by their "
        "views (thumbnails); 0 = the descriptor's order alone",
    )
    demo: bool = Field(True, description="index a small synthetic set on the first start")
    demo_per_class: int = Field(3, ge=1, description="demo shapes per synthetic class")
    reindex_chunk: int = Field(
        32, ge=1, description="files per reindex piece; on Redis, workers share the pieces"
    )
    reindex_threads: int | None = Field(
        None,
        ge=1,
        description="files a reindex loads and renders at once; default twice GMVIT_WORKERS, "
        "so that rendering goes on while the shapes rendered before wait for a forward pass",
    )
    job_stale_s: float = Field(
        30.0, gt=0, description="a running job without heartbeat this long is reported lost"
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        """Accept a JSON list or an os.pathsep-separated string, like PATH."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part for part in value.split(os.pathsep) if part]
        return value

    @field_validator("redis_url", "api_key", "read_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def reindex_render_threads(self) -> int:
        return self.reindex_threads or 2 * self.workers

    @property
    def data_path(self) -> Path:
        return self.data_dir.resolve()

    @property
    def thumbs_dir(self) -> Path:
        return self.data_path / "thumbs"

    @property
    def jobs_dir(self) -> Path:
        return self.data_path / "jobs"

    @property
    def index_root(self) -> Path:
        return self.data_path / "index"


class InvalidSettings(ValueError):
    """A `GMVIT_*` variable the service cannot use; the message names each one and why."""


def load_settings() -> Settings:
    """The settings from the environment, as every command and the service read them.

    A value that does not fit (`GMVIT_WORKERS=two`, `GMVIT_PRECISION=fp16`) raises
    `InvalidSettings`: one line naming each such variable, not pydantic's report."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"GMVIT_{str(error['loc'][0]).upper()}: {error['msg']} (got {error['input']!r})"
            for error in exc.errors()  # every check is a field's own: loc names the field
        ]
        raise InvalidSettings("; ".join(problems)) from None
