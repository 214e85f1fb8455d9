"""Errors of the index package that a person can act on."""

from __future__ import annotations


class ShapeIndexError(ValueError):
    """Base of every user-facing index error: bad vector, bad factory, unusable data dir."""


class ModelMismatchError(ShapeIndexError):
    """The index on disk was built from another model's descriptors."""

    def __init__(self, path: str, stored_model_id: str, requested_model_id: str) -> None:
        self.stored_model_id = stored_model_id
        self.requested_model_id = requested_model_id
        super().__init__(
            f"the index at {path} was built by model {stored_model_id!r}, not by "
            f"{requested_model_id!r}; its descriptors cannot be mixed: reindex the shapes "
            f"with {requested_model_id!r} into another data directory"
        )


class IndexDamagedError(ShapeIndexError):
    """Files of the index are missing or damaged and what they held cannot be recovered
    from the others: the index refuses to open rather than serve or delete anything."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(
            f"the index at {path} is damaged and was not opened (nothing was changed): "
            + "; ".join(problems)
            + ". Restore the missing files from a backup, or run `gmvit index check` for "
            "the details and `gmvit index repair` to choose what to give up; "
            "`gmvit reindex` rebuilds the collection from its mesh files."
        )
