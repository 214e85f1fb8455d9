"""The shape index: FAISS vectors + SQLite metadata, durable and shared by processes.

See `index.shape_index` for the on-disk layout, the commit discipline and how several
processes share one index.
"""

from index.check import indexes_of_other_models
from index.errors import IndexDamagedError, ModelMismatchError, ShapeIndexError
from index.shape_index import IndexBuilder, SearchHit, ShapeIndex, model_slug
from index.store import ShapeRecord
from index.vectors import normalize

__all__ = [
    "IndexBuilder",
    "IndexDamagedError",
    "ShapeIndexError",
    "ModelMismatchError",
    "SearchHit",
    "ShapeIndex",
    "ShapeRecord",
    "model_slug",
    "indexes_of_other_models",
    "normalize",
]
