"""The vectors of one index generation: a FAISS IndexIDMap2 over inner product.

Vectors are L2-normalised on the way in, so inner product is cosine similarity. The
factory string picks the inner index ("Flat" exact, "HNSW32" graph, ...). Index types
that need training (IVF, PQ, SQ) are refused: a service that adds shapes one at a time has
nothing to train them on.

HNSW cannot remove vectors, so a removed id of such an index becomes a tombstone: it stays
in the graph, is filtered out of every search by an IDSelector, and disappears when the
generation is next written to disk (`write` re-adds the live vectors to a fresh index).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from index.errors import ShapeIndexError

# Below this many candidate ids (a rare label), scoring them exactly is cheaper than an
# ANN search and, unlike HNSW with a selective filter, always finds k of them.
EXACT_SCAN_MAX = 4096
HNSW_EF_SEARCH = 64

# A snapshot file: magic, the epoch of the log it was taken from, the log offset it covers,
# crc32 and length of the FAISS payload that follows.
SNAPSHOT_MAGIC = b"GMVSNAP1"
_SNAPSHOT_HEADER = struct.Struct("<8s16sQIQ")


@dataclass(frozen=True)
class Snapshot:
    """Which log a snapshot was taken from (its epoch) and the offset up to which it holds
    the log's records; epoch None for a snapshot from before headers (legacy)."""

    epoch: bytes | None
    log_offset: int


class SnapshotDamaged(ShapeIndexError):
    """A snapshot that cannot be trusted; the log it was taken from can rebuild it."""


def normalize(vector: np.ndarray, dim: int) -> np.ndarray:
    """`vector` as a float32 (dim,) unit vector; a clear ShapeIndexError for anything else."""
    array = np.asarray(vector)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.shape[0] != dim:
        raise ShapeIndexError(f"expected a descriptor of shape ({dim},), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ShapeIndexError(f"expected a numeric descriptor, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ShapeIndexError("the descriptor contains NaN or infinite values")
    norm = float(np.linalg.norm(array))
    if norm == 0.0 or not np.isfinite(norm):
        raise ShapeIndexError("the descriptor has zero length and no direction to compare")
    return array / norm


def make_faiss_index(dim: int, factory: str) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ShapeIndexError(f"FAISS cannot build index factory {factory!r}: {exc}") from None
    if not index.is_trained:
        raise ShapeIndexError(
            f"index factory {factory!r} needs training (IVF/PQ/SQ); use 'Flat' (exact) "
            "or an HNSW factory such as 'HNSW32'"
        )
    return index


def _supports_remove(index: faiss.Index) -> bool:
    try:
        index.remove_ids(faiss.IDSelectorBatch(np.empty(0, dtype=np.int64)))
    except RuntimeError:
        return False
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Readers of `path` see the old bytes or the new ones, also across a crash."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class VectorSet:
    def __init__(self, dim: int, factory: str, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.factory = factory
        self._index = make_faiss_index(dim, factory) if index is None else index
        self._removable = _supports_remove(self._index)
        self._is_hnsw = isinstance(
            faiss.downcast_index(faiss.downcast_index(self._index).index), faiss.IndexHNSW
        )
        self._present = set(faiss.vector_to_array(self._index.id_map).tolist())
        self._tombstones: set[int] = set()

    @classmethod
    def read(cls, path: Path, dim: int, factory: str) -> tuple[VectorSet, Snapshot]:
        """The snapshot at `path` and what it covers; SnapshotDamaged if its checksum, its
        header or its FAISS payload does not hold up."""
        data = path.read_bytes()
        if data.startswith(SNAPSHOT_MAGIC):
            if len(data) < _SNAPSHOT_HEADER.size:
                raise SnapshotDamaged(f"{path} is cut short")
            _, epoch, offset, crc, length = _SNAPSHOT_HEADER.unpack_from(data)
            payload = memoryview(data)[_SNAPSHOT_HEADER.size :]
            if len(payload) != length or zlib.crc32(payload) != crc:
                raise SnapshotDamaged(f"{path} fails its checksum")
            info = Snapshot(epoch=epoch, log_offset=offset)
        else:  # written before snapshots had a header: no checksum to verify
            payload, info = memoryview(data), Snapshot(epoch=None, log_offset=0)
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise SnapshotDamaged(f"{path} is not a FAISS index ({exc})") from None
        if index.d != dim:
            raise ShapeIndexError(f"{path} holds {index.d}-d vectors, expected {dim}-d")
        return cls(dim, factory, index), info

    def write(self, path: Path, covers: Snapshot) -> None:
        """Write the live vectors atomically (tmp, fsync, rename), dropping tombstones, with
        a header saying which log and how much of it they cover, and a checksum."""
        if self._tombstones:
            ids, vectors = self.live_vectors()
            self._index = make_faiss_index(self.dim, self.factory)
            self._present = set()
            self._tombstones = set()
            self.add(ids, vectors)
        payload = faiss.serialize_index(self._index)
        header = _SNAPSHOT_HEADER.pack(
            SNAPSHOT_MAGIC, covers.epoch, covers.log_offset, zlib.crc32(payload), len(payload)
        )
        write_atomically(path, header + payload.tobytes())

    def __len__(self) -> int:
        return len(self._present) - len(self._tombstones)

    def __contains__(self, shape_id: int) -> bool:
        return shape_id in self._present and shape_id not in self._tombstones

    def ids(self) -> np.ndarray:
        return np.fromiter((i for i in self._present if i not in self._tombstones), dtype=np.int64)

    def live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        inner = faiss.downcast_index(self._index).index
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = (
            inner.reconstruct_n(0, inner.ntotal)
            if inner.ntotal
            else np.empty((0, self.dim), dtype=np.float32)
        )
        keep = np.fromiter((i not in self._tombstones for i in ids.tolist()), bool, len(ids))
        return ids[keep], vectors[keep]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors; ids already present are skipped (a replayed log is idempotent,
        ids are never reused, so a present id already holds this vector)."""
        ids = np.asarray(ids, dtype=np.int64)
        fresh = np.fromiter((i not in self._present for i in ids.tolist()), bool, len(ids))
        if not fresh.any():
            return
        self._index.add_with_ids(np.ascontiguousarray(vectors[fresh], np.float32), ids[fresh])
        self._present.update(ids[fresh].tolist())

    def remove(self, ids: np.ndarray) -> None:
        doomed = [i for i in np.asarray(ids, dtype=np.int64).tolist() if i in self]
        if not doomed:
            return
        if self._removable:
            self._index.remove_ids(faiss.IDSelectorBatch(np.array(doomed, dtype=np.int64)))
            self._present.difference_update(doomed)
        else:
            self._tombstones.update(doomed)

    def vector(self, shape_id: int) -> np.ndarray | None:
        if shape_id not in self:
            return None
        return self._index.reconstruct(shape_id)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        exclude: int | None = None,
    ) -> list[tuple[int, float]]:
        """The k best (id, score) among live ids, restricted to `allowed` when given."""
        blocked = set(self._tombstones)
        if exclude is not None:
            blocked.add(exclude)
        if allowed is not None:
            wanted_ids = np.asarray(allowed, np.int64).tolist()
            candidates = np.array(
                [i for i in wanted_ids if i in self and i not in blocked], dtype=np.int64
            )
            if len(candidates) <= EXACT_SCAN_MAX:
                return self._exact(query, candidates, k)
            selector = faiss.IDSelectorBatch(candidates)
            wanted = min(k, len(candidates))
        else:
            blocked &= self._present
            selector = (
                faiss.IDSelectorNot(faiss.IDSelectorBatch(np.array(sorted(blocked), np.int64)))
                if blocked
                else None
            )
            candidates = None
            wanted = min(k, len(self._present) - len(blocked))
        if wanted <= 0:
            return []
        hits = self._ann(query, k, selector)
        if len(hits) < wanted:
            # HNSW under a selective filter can end its walk short of k members.
            if candidates is None:
                candidates = np.array(
                    [i for i in self._present if i not in blocked], dtype=np.int64
                )
            return self._exact(query, candidates, k)
        return hits

    def _ann(
        self, query: np.ndarray, k: int, selector: faiss.IDSelector | None
    ) -> list[tuple[int, float]]:
        if self._is_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        scores, ids = self._index.search(query.reshape(1, -1), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _exact(self, query: np.ndarray, candidates: np.ndarray, k: int) -> list[tuple[int, float]]:
        if len(candidates) == 0:
            return []
        scores = self._index.reconstruct_batch(candidates) @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(candidates[j]), float(scores[j])) for j in order]
