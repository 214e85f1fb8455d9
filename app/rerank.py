"""The second stage of `/search`: near-ties of the descriptor settled by the views.

The descriptor ranks the index; where the next candidates come within `margin` (cosine) of
the best, it cannot tell them apart, and their views decide. Shapes of nearly one outline
(two variants of a window, a switch plate and a plug plate) have descriptors that agree to
three or four decimals, closer than a re-export's noise moves a shape's own descriptor; their
views, compared pixel by pixel, still differ.

The views of an indexed shape are its thumbnail (`app.pipeline.grid_image`: every view,
row by row, in one image at most `THUMBNAIL_PX` wide); the query's are put through the same
`grid_image`, so a shape and its own thumbnail give the same signature. A signature is each
view in grey at `SIGNATURE_PX` square, the whole of it centred and scaled to unit length;
two signatures are compared at every turn of the rig about +Z that maps its cameras onto
themselves (views reordered) and mirrored (views flipped and reordered), the best
correlation counting, so a copy turned or mirrored is still itself.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from PIL import Image

from gmvit.data.datasets import mirror_order, turn_orders

SIGNATURE_PX = 32
# How many of the descriptor's best candidates a near-tie is looked for among.
CANDIDATES = 10

Hit = TypeVar("Hit")


def view_signature(grid: Image.Image | bytes, num_views: int) -> np.ndarray:
    """(V, SIGNATURE_PX**2) grey views of a view grid (an image or its PNG bytes), laid out
    as `renderer.view_grid` lays them: row by row, ceil(sqrt(V)) columns. Each view is the
    area average of its cell (not PIL's resampling, which does not commute with a mirror:
    a flipped view must give the flipped signature)."""
    if isinstance(grid, bytes):
        grid = Image.open(io.BytesIO(grid))
    grey = np.asarray(grid.convert("L"), dtype=np.float32)
    columns = math.ceil(math.sqrt(num_views))
    rows = math.ceil(num_views / columns)
    down = _cell_weights(grey.shape[0], rows).reshape(rows * SIGNATURE_PX, -1)
    across = _cell_weights(grey.shape[1], columns).reshape(columns * SIGNATURE_PX, -1)
    cells = (down @ grey @ across.T).reshape(rows, SIGNATURE_PX, columns, SIGNATURE_PX)
    views = cells.transpose(0, 2, 1, 3).reshape(rows * columns, -1)
    return views[:num_views]


@functools.lru_cache(maxsize=16)
def _cell_weights(length: int, cells: int) -> np.ndarray:
    """(cells, SIGNATURE_PX, length): the share of each pixel of a line of `length` in each
    of the SIGNATURE_PX equal parts of each of `cells` equal cells (parts may split pixels)."""
    edges = np.linspace(0.0, length, cells * SIGNATURE_PX + 1)
    pixels = np.arange(length, dtype=np.float64)
    low = np.maximum(edges[:-1, None], pixels[None, :])
    high = np.minimum(edges[1:, None], pixels[None, :] + 1.0)
    overlap = np.clip(high - low, 0.0, None)
    weights = overlap / overlap.sum(axis=1, keepdims=True)
    return weights.reshape(cells, SIGNATURE_PX, length).astype(np.float32)


def _unit(signatures: np.ndarray) -> np.ndarray:
    """(..., V, P) -> each signature, all views together, centred and of unit length."""
    flat = signatures.reshape(*signatures.shape[:-2], -1)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    return flat / np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-12)


def poses(signature: np.ndarray, rig: str) -> np.ndarray:
    """(2T, V * P): a query signature at every turn of `rig`, then mirrored at every turn,
    each centred and of unit length."""
    views = signature.reshape(len(signature), SIGNATURE_PX, SIGNATURE_PX)
    mirrored = views[mirror_order(rig)][:, :, ::-1]
    turns = turn_orders(rig)
    stack = np.concatenate([views[turns], mirrored[turns]])
    return _unit(stack.reshape(len(stack), len(signature), -1))


def view_similarity(query_poses: np.ndarray, signature: np.ndarray) -> float:
    """The best correlation of a candidate's signature with any pose of the query."""
    return float((query_poses @ _unit(signature)).max())


def near_ties(scores: Sequence[float], margin: float) -> list[int]:
    """Positions among the first `CANDIDATES` (best first) whose score is within `margin` of
    the best; none when fewer than two are (or `margin` is 0): nothing to settle."""
    if margin <= 0 or not scores:
        return []
    tied = [i for i, score in enumerate(scores[:CANDIDATES]) if score >= scores[0] - margin]
    return tied if len(tied) > 1 else []


def settle(
    hits: Sequence[Hit],
    tied: Sequence[int],
    query_poses: np.ndarray,
    signatures: dict[int, np.ndarray],
) -> list[Hit]:
    """`hits` with the `tied` positions that have a signature (`signatures` is keyed by
    position) ordered among themselves by their views' similarity to the query's; every
    other hit keeps its place. Equal similarities keep the descriptor's order."""
    present = [i for i in tied if i in signatures]
    settled = list(hits)
    if len(present) < 2:
        return settled
    order = sorted(present, key=lambda i: -view_similarity(query_poses, signatures[i]))
    for place, i in zip(present, order, strict=True):
        settled[place] = hits[i]
    return settled


def settle_near_ties(
    hits: Sequence[Hit],
    scores: Sequence[float],
    margin: float,
    query: Callable[[], np.ndarray | None],
    signatures_of: Callable[[list[int]], dict[int, np.ndarray]],
    rig: str,
) -> list[Hit]:
    """`hits` (best first, `scores` theirs) as `/search` orders them: the near-ties within
    `margin` of the best settled by their views. `query()` gives the query's signature (None:
    it has no views, nothing moves) and `signatures_of(positions)` the tied hits' signatures
    by position; both are called only when there is a near-tie to settle."""
    tied = near_ties(scores, margin)
    signature = query() if tied else None
    if signature is None:
        return list(hits)
    return settle(hits, tied, poses(signature, rig), signatures_of(tied))
