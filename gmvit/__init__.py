"""GMViT networks, checkpoints and the Embedder: views in, descriptors and class scores out."""

from gmvit.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gmvit.embedder import Embedder, Embedding
from gmvit.errors import GMViTError
from gmvit.model import GMViT, GMViTConfig, GMViTOutput, create_model
from gmvit.reference import load_reference

__all__ = [
    "Checkpoint",
    "Embedder",
    "Embedding",
    "GMViT",
    "GMViTConfig",
    "GMViTError",
    "GMViTOutput",
    "create_model",
    "load_checkpoint",
    "load_reference",
    "save_checkpoint",
]
