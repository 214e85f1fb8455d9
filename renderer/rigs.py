"""Camera rigs: the fixed view directions of GMViT, in the order of GMVIT_SPEC.md.

`positions` are the vectors exactly as the spec lists them (unnormalised): the network's
spatial encoding consumes them as they are, and the renderer puts view i on the ray from
the origin through positions[i].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rig:
    name: str
    positions: np.ndarray  # (V, 3) float64, exactly as in the spec

    @property
    def num_views(self) -> int:
        return len(self.positions)

    @property
    def directions(self) -> np.ndarray:
        """Unit vectors from the origin towards each camera, (V, 3)."""
        return self.positions / np.linalg.norm(self.positions, axis=1, keepdims=True)


def _circle_12() -> np.ndarray:
    s = np.sqrt(3.0)
    return np.array(
        [
            (1, 0, s / 3),
            (s / 2, -1 / 2, s / 3),
            (1 / 2, -s / 2, s / 3),
            (0, -1, s / 3),
            (-1 / 2, -s / 2, s / 3),
            (-s / 2, -1 / 2, s / 3),
            (-1, 0, s / 3),
            (-s / 2, 1 / 2, s / 3),
            (-1 / 2, s / 2, s / 3),
            (0, 1, s / 3),
            (1 / 2, s / 2, s / 3),
            (s / 2, 1 / 2, s / 3),
        ],
        dtype=np.float64,
    )


def _dodecahedron_20() -> np.ndarray:
    p = (1 + np.sqrt(5.0)) / 2
    q = 1 / p
    return np.array(
        [
            (1, 1, 1),
            (1, 1, -1),
            (1, -1, 1),
            (1, -1, -1),
            (-1, 1, 1),
            (-1, 1, -1),
            (-1, -1, 1),
            (-1, -1, -1),
            (0, q, p),
            (0, q, -p),
            (0, -q, p),
            (0, -q, -p),
            (p, 0, q),
            (p, 0, -q),
            (-p, 0, q),
            (-p, 0, -q),
            (q, p, 0),
            (-q, p, 0),
            (q, -p, 0),
            (-q, -p, 0),
        ],
        dtype=np.float64,
    )


RIGS: dict[str, Rig] = {
    "circle-12": Rig("circle-12", _circle_12()),
    "dodecahedron-20": Rig("dodecahedron-20", _dodecahedron_20()),
}

RIG_FOR_VIEWS: dict[int, str] = {rig.num_views: name for name, rig in RIGS.items()}


def get_rig(name: str) -> Rig:
    try:
        return RIGS[name]
    except KeyError:
        raise ValueError(f"unknown camera rig {name!r}; choose one of {sorted(RIGS)}") from None
