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


# Below this angle to the +Z axis, +Z projects to almost nothing on the image plane.
_UP_FALLBACK_DEGREES = 1.0


def up_vector(direction: np.ndarray) -> np.ndarray:
    """The image's up direction for a camera at `direction` looking at the origin.

    World +Z projected onto the image plane, so the scene's up axis points up in every
    view; when the view is within 1 degree of +-Z, world +Y projected instead.
    """
    forward = -np.asarray(direction, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    world_up = np.array([0.0, 0.0, 1.0])
    if abs(forward @ world_up) > np.cos(np.radians(_UP_FALLBACK_DEGREES)):
        world_up = np.array([0.0, 1.0, 0.0])
    up = world_up - (world_up @ forward) * forward
    return up / np.linalg.norm(up)


def camera_pose(direction: np.ndarray, distance: float) -> np.ndarray:
    """4x4 camera-to-world pose (OpenGL convention: the camera looks along its -z axis)
    at `distance` from the origin on the ray through `direction`, looking at the origin."""
    back = np.asarray(direction, dtype=np.float64)
    back = back / np.linalg.norm(back)
    up = up_vector(back)
    right = np.cross(up, back)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, distance * back
    return pose
