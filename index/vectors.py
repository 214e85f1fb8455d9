"""The vectors of one index generation: a FAISS IndexIDMap2 over inner product.

Vectors are L2-normalised on the way in, so inner product is cosine similarity. The
factory string picks the inner index ("Flat" exact, "HNSW32" graph, "IVF1024,Flat",
"IVF4096,PQ64", ...). Index types that need training (IVF, PQ, SQ) cannot grow one add at a
time from nothing: a generation of such a factory holds its vectors in an exact (Flat)
index until an IndexBuilder commits it (`trained_vectors`: a reindex trains it on a sample
of the vectors it built), and searches exactly meanwhile.

HNSW and IVF (whose vectors FAISS finds back through a direct map that cannot remove)
cannot remove vectors, so a removed id of such an index becomes a tombstone: it stays in
the index, is filtered out of every search by an IDSelector, and disappears when the
generation is next written to disk. An IVF drops its tombstones in place (each inverted
list compacted where it is); an HNSW graph is rebuilt from its live vectors, its training
kept (for lossy codes from the log's exact copy, see the generation's `compact`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from index.errors import ShapeIndexError
from index.files import atomic_file

# Below this many candidate ids (a rare label), scoring them exactly is cheaper than an
# ANN search and, unlike HNSW with a selective filter, always finds k of them.
EXACT_SCAN_MAX = 4096
# HNSW's default candidate list at search time (ShapeIndex.open(ef_search=...) changes it).
HNSW_EF_SEARCH = 64
# Candidates per insertion into an HNSW graph. On clustered 512-d descriptors at 1M
# (bench/index.py), FAISS's default of 40 gave recall@10 0.76 at efSearch 64 and 0.92 at
# 512; 160 gives 0.998 at 64 (0.4 ms) for 3.3x the build time, small beside rendering.
HNSW_EF_CONSTRUCTION = 160
# IVF's inverted lists probed per query (ShapeIndex.open(nprobe=...) changes it).
IVF_NPROBE = 16

# A snapshot file: magic, the epoch of the log it was taken from, the log offset it covers,
# crc32 and length of the FAISS payload that follows.
SNAPSHOT_MAGIC = b"GMVSNAP1"
_SNAPSHOT_HEADER = struct.Struct("<8s16sQIQ")
_IO_BLOCK = 8 * 2**20


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


# Vectors an index that needs training is trained on (a random sample of a rebuild's).
TRAIN_SAMPLE = 100_000


def training_sample(count: int) -> np.ndarray:
    """Which of `count` vectors (by number, ascending) a factory is trained on: all of
    them up to TRAIN_SAMPLE, else a random TRAIN_SAMPLE of them, the same for one count."""
    if count <= TRAIN_SAMPLE:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, TRAIN_SAMPLE, replace=False))


@dataclass(frozen=True)
class SearchKnobs:
    """Search-time settings: HNSW's candidate list, IVF's inverted lists probed."""

    ef_search: int = HNSW_EF_SEARCH
    nprobe: int = IVF_NPROBE


def make_faiss_index(
    dim: int, factory: str, ef_construction: int = HNSW_EF_CONSTRUCTION
) -> faiss.Index:
    """IDMap2 over the factory's index, trained or not (see `needs_training`); an HNSW
    graph is built with `ef_construction` candidates per insertion."""
    try:
        index = faiss.index_factory(dim, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ShapeIndexError(f"FAISS cannot build index factory {factory!r}: {exc}") from None
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = ef_construction
    return index


def train_index(dim: int, factory: str, sample: np.ndarray) -> faiss.Index:
    """An empty index of `factory` trained on `sample` (unit vectors); ShapeIndexError if
    FAISS cannot train it on that many."""
    index = make_faiss_index(dim, factory)
    try:
        index.train(np.ascontiguousarray(sample, np.float32))
    except RuntimeError as exc:
        raise ShapeIndexError(
            f"index factory {factory!r} cannot be trained on {len(sample)} "
            f"vectors ({str(exc).splitlines()[0][:200]}); index more shapes, or use "
            "'Flat' or an HNSW factory"
        ) from None
    return index


# What a fill reads its vectors from: called once per pass, each call gives the same (ids,
# vectors) blocks in the same order.
Blocks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def trained_vectors(dim: int, factory: str, sample: np.ndarray, blocks: Blocks) -> VectorSet:
    """An index of `factory`, trained on `sample` (unit vectors), holding every (ids,
    vectors) block of `blocks()`: a reindex commit streams its vectors in, never holding
    them all."""
    vectors = VectorSet(dim, factory, train_index(dim, factory, sample))
    vectors.fill(blocks)
    return vectors


def needs_training(dim: int, factory: str) -> bool:
    return not make_faiss_index(dim, factory).is_trained


def _storage(index: faiss.Index) -> faiss.Index:
    """The index inside an IDMap2 that holds the vectors (an HNSW graph's storage)."""
    inner = faiss.downcast_index(faiss.downcast_index(index).index)
    return faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner


def _keeps_whole_vectors(index: faiss.Index) -> bool:
    """Whether the index gives its vectors back exactly (reconstruct), not from codes (SQ,
    PQ): by what it is, not by the factory asked for, which a snapshot may predate."""
    return isinstance(_storage(index), faiss.IndexFlat | faiss.IndexIVFFlat)


def _inner_ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    """The IVF inside an IDMap2 index, None for another kind of index."""
    try:
        return faiss.extract_index_ivf(faiss.downcast_index(index).index)
    except RuntimeError:
        return None


def _array_lists(index: faiss.Index) -> tuple[faiss.IndexIVF, faiss.ArrayInvertedLists] | None:
    """The IVF inside an IDMap2 index and its inverted lists, where they are in memory
    arrays (FAISS's own; an index read from disk has them); None otherwise."""
    ivf = _inner_ivf(index)
    lists = None if ivf is None else faiss.downcast_InvertedLists(ivf.invlists)
    return (ivf, lists) if isinstance(lists, faiss.ArrayInvertedLists) else None


def _drop_from_lists(index: faiss.Index, doomed: np.ndarray) -> None:
    """Remove these ids' vectors from an IDMap2 over an IVF with array lists, in place.
    Under the IDMap2 the IVF numbers its vectors 0, 1, ... in the order they came; each list
    keeps its survivors in their order, renumbered to close the gaps, so the index is the
    one that adding the survivors alone would have built, byte for byte, and no second
    index is built beside it (5 GiB at 10M vectors of IVF4096,SQ8)."""
    ivf, lists = _array_lists(index)
    id_map_index = faiss.downcast_index(index)
    id_map = faiss.vector_to_array(id_map_index.id_map)
    keep = ~np.isin(id_map, doomed)
    renumbered = np.cumsum(keep) - 1
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if not size:
            continue
        numbers = faiss.rev_swig_ptr(lists.get_ids(list_no), size)
        survive = keep[numbers]
        new_numbers = np.ascontiguousarray(renumbered[numbers[survive]])
        if len(new_numbers) == size and np.array_equal(new_numbers, numbers):
            continue
        codes = faiss.rev_swig_ptr(lists.get_codes(list_no), size * ivf.code_size)
        kept = np.ascontiguousarray(codes.reshape(size, ivf.code_size)[survive])
        if len(kept):
            lists.update_entries(
                list_no, 0, len(kept), faiss.swig_ptr(new_numbers), faiss.swig_ptr(kept)
            )
        lists.resize(list_no, len(kept))
    faiss.copy_array_to_vector(id_map[keep], id_map_index.id_map)
    ivf.ntotal = id_map_index.ntotal = int(keep.sum())
    id_map_index.construct_rev_map()
    ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # set again: rebuilt from the lists
    ivf.set_direct_map_type(faiss.DirectMap.Array)


def _with_direct_map(index: faiss.Index) -> faiss.Index:
    """An IVF inside answers reconstruct(id): a direct map from its ids (0, 1, ... under
    IDMap2) to where each vector sits in the inverted lists. An array, not FAISS's hash
    table: adds through IDMap2 give the IVF no ids, and FAISS 1.15 then files them in a
    hash table under wrong keys (every reconstruct after a reindex commit failed or
    returned another shape's vector). Setting the type rebuilds the map from the lists, so
    an index saved with the broken table is mended when it is read."""
    ivf = _inner_ivf(index)
    if ivf is not None:
        ivf.set_direct_map_type(faiss.DirectMap.Array)
    return index


def _empty_copy(index: faiss.Index) -> faiss.Index:
    """An empty index with `index`'s training. An IVF's inverted lists are swapped for
    empty ones while it is cloned: a clone would copy every code (5 GiB at 10M vectors of
    IVF4096,SQ8) only for the copy to be reset."""
    ivf = _inner_ivf(index)
    if ivf is None:
        copy = faiss.clone_index(index)
    else:
        lists = ivf.invlists
        ivf.own_invlists = False  # so that swapping them out does not free them
        empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        ivf.replace_invlists(empty, False)
        try:
            copy = faiss.clone_index(index)
        finally:
            ivf.replace_invlists(lists, True)
    copy.reset()
    return copy


def _supports_remove(index: faiss.Index) -> bool:
    try:
        index.remove_ids(faiss.IDSelectorBatch(np.empty(0, dtype=np.int64)))
    except RuntimeError:
        return False
    return True


def _payload_crc(file: BinaryIO) -> tuple[int, int]:
    """crc32 and length of what `file` holds from where it stands to its end."""
    crc, length = 0, 0
    while block := file.read(_IO_BLOCK):
        crc, length = zlib.crc32(block, crc), length + len(block)
    return crc, length


class VectorSet:
    """The vectors of a generation in a FAISS index of `factory`; while that factory still
    needs training, in an exact Flat index (`staged`) until a reindex commit trains one
    (`trained_vectors`)."""

    def __init__(self, dim: int, factory: str, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.factory = factory
        if index is None:
            index = make_faiss_index(dim, factory)
            if not index.is_trained:
                index = make_faiss_index(dim, "Flat")
        self._index = _with_direct_map(index)
        inner = faiss.downcast_index(faiss.downcast_index(self._index).index)
        self.staged = isinstance(inner, faiss.IndexFlat) and needs_training(dim, factory)
        self.exact = self.staged or _keeps_whole_vectors(self._index)
        self._removable = _supports_remove(self._index)
        self._is_hnsw = isinstance(inner, faiss.IndexHNSW)
        self._is_ivf = isinstance(inner, faiss.IndexIVF)
        self._present = set(faiss.vector_to_array(self._index.id_map).tolist())
        self._tombstones: set[int] = set()

    @classmethod
    def read(cls, path: Path, dim: int, factory: str) -> tuple[VectorSet, Snapshot]:
        """The snapshot at `path` and what it covers; SnapshotDamaged if its checksum, its
        header or its FAISS payload does not hold up. The file is streamed twice (checksum,
        then FAISS), never held whole beside the index it becomes."""
        with open(path, "rb") as file:
            head = file.read(_SNAPSHOT_HEADER.size)
            if head.startswith(SNAPSHOT_MAGIC):
                if len(head) < _SNAPSHOT_HEADER.size:
                    raise SnapshotDamaged(f"{path} is cut short")
                _, epoch, offset, crc, length = _SNAPSHOT_HEADER.unpack(head)
                if _payload_crc(file) != (crc, length):
                    raise SnapshotDamaged(f"{path} fails its checksum")
                info = Snapshot(epoch=epoch, log_offset=offset)
                file.seek(_SNAPSHOT_HEADER.size)
            else:  # written before snapshots had a header: no checksum to verify
                info = Snapshot(epoch=None, log_offset=0)
                file.seek(0)
            try:
                index = faiss.read_index(faiss.PyCallbackIOReader(file.read, _IO_BLOCK))
            except RuntimeError as exc:
                raise SnapshotDamaged(f"{path} is not a FAISS index ({exc})") from None
        if index.d != dim:
            raise ShapeIndexError(f"{path} holds {index.d}-d vectors, expected {dim}-d")
        return cls(dim, factory, index), info

    def write(self, path: Path, covers: Snapshot) -> None:
        """Write the live vectors atomically (tmp, fsync, rename), dropping tombstones, with
        a header saying which log and how much of it they cover, and a checksum. FAISS
        streams its payload to the file; the header is filled in once its checksum is known."""
        self.drop_tombstones()
        crc, length = 0, 0

        def payload(block: bytes) -> int:
            nonlocal crc, length
            crc, length = zlib.crc32(block, crc), length + len(block)
            return out.write(block)

        with atomic_file(path) as out:
            out.write(bytes(_SNAPSHOT_HEADER.size))
            faiss.write_index(self._index, faiss.PyCallbackIOWriter(payload, _IO_BLOCK))
            out.seek(0)
            out.write(
                _SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, covers.epoch, covers.log_offset, crc, length)
            )

    def serialized_bytes(self) -> int:
        """The size of the FAISS index as a snapshot writes it."""
        return len(faiss.serialize_index(self._index))

    def __len__(self) -> int:
        return len(self._present) - len(self._tombstones)

    def __contains__(self, shape_id: int) -> bool:
        return shape_id in self._present and shape_id not in self._tombstones

    def ids(self) -> np.ndarray:
        return np.fromiter((i for i in self._present if i not in self._tombstones), dtype=np.int64)

    def live_chunks(self, size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the live vectors, at most `size` at a time, in the index's
        order: what a commit walks through without a second copy of them all."""
        inner = faiss.downcast_index(self._index).index
        all_ids = self._stored_ids()
        for start in range(0, len(all_ids), size):
            ids = all_ids[start : start + size]
            vectors = inner.reconstruct_n(start, len(ids))
            if self._tombstones:
                keep = self._live(ids)
                ids, vectors = ids[keep], vectors[keep]
            yield ids, vectors

    def _stored_ids(self) -> np.ndarray:
        """The ids of every vector in the FAISS index, tombstones too, in its order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _live(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` are not tombstones."""
        return np.fromiter((i not in self._tombstones for i in ids.tolist()), bool, len(ids))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors; ids already present, or met before in `ids`, are skipped (a
        replayed log is idempotent, ids are never reused, so a present id already holds
        this vector)."""
        ids = np.asarray(ids, dtype=np.int64)
        fresh = np.zeros(len(ids), dtype=bool)
        seen: set[int] = set()
        for k, shape_id in enumerate(ids.tolist()):
            if shape_id not in self._present and shape_id not in seen:
                fresh[k] = True
                seen.add(shape_id)
        if not fresh.any():
            return
        if not fresh.all():
            ids, vectors = ids[fresh], vectors[fresh]
        self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
        self._present.update(ids.tolist())

    def remove(self, ids: np.ndarray) -> None:
        doomed = [i for i in np.asarray(ids, dtype=np.int64).tolist() if i in self]
        if not doomed:
            return
        if self._removable:
            self._index.remove_ids(faiss.IDSelectorBatch(np.array(doomed, dtype=np.int64)))
            self._present.difference_update(doomed)
        else:
            self._tombstones.update(doomed)

    def as_stored(self, vectors: np.ndarray) -> np.ndarray:
        """What the index gives back for these (n, dim) vectors once it holds them: the
        vectors themselves where it keeps them whole, else their codes decoded (equal, bit
        for bit, to what `vector` reconstructs)."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        if self.exact:
            return vectors
        codec = _storage(self._index)
        return codec.sa_decode(codec.sa_encode(vectors))

    def vector(self, shape_id: int) -> np.ndarray | None:
        if shape_id not in self:
            return None
        return self._index.reconstruct(shape_id)

    def stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The (n, dim) vectors of these live ids as the index gives them back, in their
        order, in one call (FAISS's reconstruct_batch: the id map, then each vector where it
        sits)."""
        return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    @property
    def has_tombstones(self) -> bool:
        return bool(self._tombstones)

    @property
    def drops_tombstones(self) -> bool:
        """Whether the index can drop removed vectors by itself (`drop_tombstones`): an
        IVF, or an index that keeps whole vectors. A lossy HNSW cannot: only the log's exact
        vectors can rebuild it (the generation's `compact`)."""
        return self.exact or _array_lists(self._index) is not None

    def drop_tombstones(self) -> None:
        """Remove the tombstones' vectors for good: an IVF's lists are compacted in place,
        another index is rebuilt from its own live vectors."""
        if not self._tombstones:
            return
        if _array_lists(self._index) is not None:
            _drop_from_lists(self._index, np.array(sorted(self._tombstones), dtype=np.int64))
            self._present -= self._tombstones
        elif self.exact:
            fresh = self.rebuilt(self.live_chunks)
            self._index, self._present = fresh._index, fresh._present
        else:
            raise ShapeIndexError("removed vectors of a lossy HNSW index are dropped by compact")
        self._tombstones = set()

    def emptied(self) -> VectorSet:
        """An empty set of the same kind, its training kept."""
        return VectorSet(self.dim, self.factory, _empty_copy(self._index))

    def rebuilt(self, blocks: Blocks) -> VectorSet:
        """A fresh index of the same kind (its training kept) holding only the (ids,
        vectors) blocks of `blocks()`: removed ones (tombstones of HNSW and IVF) are gone
        for good."""
        fresh = self.emptied()
        fresh.fill(blocks)
        return fresh

    def fill(self, blocks: Blocks) -> None:
        """Add every (ids, vectors) block of `blocks()` to this empty set.

        An IVF's inverted lists would grow by doubling as vectors arrive, each ending up to
        twice its size (3 GiB more than the codes at 10M vectors of IVF4096,SQ8). So an IVF
        reads the blocks twice: the first read assigns every vector to its list, each list
        is then allocated at its final size, and the second read adds the vectors to the
        lists they were assigned (FAISS's `add_core`), sequential ids under the IDMap2.
        """
        ivf_lists = _array_lists(self._index)
        if ivf_lists is None or self._present:
            for ids, vectors in blocks():
                self.add(ids, vectors)
            return
        ivf, lists = ivf_lists
        id_blocks, list_blocks = [], []
        for ids, vectors in blocks():
            id_blocks.append(np.asarray(ids, dtype=np.int64))
            list_blocks.append(ivf.quantizer.assign(np.ascontiguousarray(vectors, np.float32), 1))
        if not id_blocks:
            return
        all_ids = np.concatenate(id_blocks)
        assigned = np.concatenate(list_blocks).reshape(-1)
        del id_blocks, list_blocks
        if len(np.unique(all_ids)) < len(all_ids):  # a replayed id: `add` skips repeats
            for ids, vectors in blocks():
                self.add(ids, vectors)
            return
        for list_no, count in enumerate(np.bincount(assigned, minlength=ivf.nlist).tolist()):
            # Growing an empty list allocates exactly `count` entries (libstdc++), and
            # shrinking it back keeps them for the adds.
            lists.resize(list_no, count)
            lists.resize(list_no, 0)
        done = 0
        for ids, vectors in blocks():
            end = done + len(ids)
            if not np.array_equal(ids, all_ids[done:end]):
                raise ShapeIndexError("the vectors being added changed between two reads")
            block = np.ascontiguousarray(vectors, np.float32)
            where = np.ascontiguousarray(assigned[done:end])
            ivf.add_core(len(block), faiss.swig_ptr(block), None, faiss.swig_ptr(where))
            done = end
        if done != len(all_ids):
            raise ShapeIndexError("the vectors being added changed between two reads")
        id_map = faiss.downcast_index(self._index)
        faiss.copy_array_to_vector(all_ids, id_map.id_map)
        id_map.ntotal = ivf.ntotal
        id_map.construct_rev_map()
        self._present = set(all_ids.tolist())

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        exclude: int | None = None,
        knobs: SearchKnobs = SearchKnobs(),
    ) -> list[tuple[int, float]]:
        """The k best (id, score) among live ids, restricted to `allowed` when given.
        `knobs`: the search-time settings of the index (recall against speed)."""
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
        hits = self._ann(query, k, selector, knobs)
        if len(hits) < wanted:
            # HNSW under a selective filter can end its walk short of k members.
            if candidates is None:
                candidates = np.array(
                    [i for i in self._present if i not in blocked], dtype=np.int64
                )
            return self._exact(query, candidates, k)
        return hits

    def _ann(
        self, query: np.ndarray, k: int, selector: faiss.IDSelector | None, knobs: SearchKnobs
    ) -> list[tuple[int, float]]:
        if self._is_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(knobs.ef_search, k))
        elif self._is_ivf:
            params = faiss.SearchParametersIVF(nprobe=knobs.nprobe)
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
