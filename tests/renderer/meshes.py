"""Small meshes and files the renderer tests build themselves."""

from __future__ import annotations

import json
import struct

import numpy as np
import trimesh


def two_part_scene() -> trimesh.Scene:
    """A box moved to +X by its node transform plus a sphere: bounds prove flattening."""
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([5, 0, 0])
    )
    scene.add_geometry(trimesh.creation.icosphere(subdivisions=2))
    return scene


SCENE_BOUNDS = np.array([[-1.0, -1.0, -1.0], [5.5, 1.0, 1.0]])
SCENE_FACES = 12 + 320


def arm_shape() -> trimesh.Trimesh:
    """A small cube with a long arm along +X and a short one along +Y: no symmetry, so
    every camera direction sees its own silhouette."""
    body = trimesh.creation.box(extents=[0.4, 0.4, 0.4])
    long_arm = trimesh.creation.box(
        extents=[1.0, 0.16, 0.16],
        transform=trimesh.transformations.translation_matrix([0.7, 0, 0]),
    )
    short_arm = trimesh.creation.box(
        extents=[0.16, 0.5, 0.16],
        transform=trimesh.transformations.translation_matrix([0, 0.45, 0]),
    )
    return trimesh.util.concatenate([body, long_arm, short_arm])


def glb_with_extension(extension: str) -> bytes:
    """A valid GLB whose JSON declares (and requires) a mesh compression extension."""
    glb = trimesh.Scene(trimesh.creation.box()).export(file_type="glb")
    json_length = struct.unpack("<I", glb[12:16])[0]
    document = json.loads(glb[20 : 20 + json_length])
    document["extensionsUsed"] = [extension]
    document["extensionsRequired"] = [extension]
    chunk = json.dumps(document).encode()
    chunk += b" " * (-len(chunk) % 4)
    rest = glb[20 + json_length :]
    body = struct.pack("<I", len(chunk)) + b"JSON" + chunk + rest
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body
