"""Errors of the index package that a person can act on."""

from __future__ import annotations


class IndexError_(ValueError):  # noqa: N801 - trailing underscore avoids the builtin IndexError
    """Base of every user-facing index error: bad vector, bad factory, unusable data dir."""


class ModelMismatchError(IndexError_):
    """The index on disk was built from another model's descriptors."""

    def __init__(self, path: str, stored_model_id: str, requested_model_id: str) -> None:
        self.stored_model_id = stored_model_id
        self.requested_model_id = requested_model_id
        super().__init__(
            f"the index at {path} was built by model {stored_model_id!r}, not by "
            f"{requested_model_id!r}; its descriptors cannot be mixed: reindex the shapes "
            f"with {requested_model_id!r} into another data directory"
        )
