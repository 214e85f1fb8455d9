"""The one error type of `gmvit` that is meant for a person to read."""

from __future__ import annotations


class GMViTError(ValueError):
    """Bad input to a gmvit network, checkpoint or embedder: the message says what to fix."""
