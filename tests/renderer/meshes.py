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


def noisy_thin_pane(seed: int = 0) -> trimesh.Trimesh:
    """A 1 x 1 pane 0.2 % thick, finely tessellated, every vertex moved by Gaussian noise of
    0.2 % of its diagonal: thicker than the pane, so its two sides pass through each other
    (a glass pane of a real model after a noisy re-export)."""
    pane = trimesh.creation.box(extents=[1.0, 0.002, 1.0])
    vertices, faces = trimesh.remesh.subdivide_to_size(pane.vertices, pane.faces, 0.03)
    pane = trimesh.Trimesh(vertices, faces)  # merged: the sides stay joined at the rim
    noise = np.random.default_rng(seed).normal(0.0, 0.002 * np.sqrt(2.0), pane.vertices.shape)
    return trimesh.Trimesh(pane.vertices + noise, pane.faces, process=False)


def open_mixed_winding(seed: int = 0) -> trimesh.Trimesh:
    """`arm_shape` and a small sphere with a third of their faces gone and half the rest
    wound the other way: open and inconsistently wound, as many meshes made by others are."""
    sphere = trimesh.creation.icosphere(subdivisions=2).apply_scale(0.3)
    mesh = trimesh.util.concatenate([arm_shape(), sphere])
    rng = np.random.default_rng(seed)
    faces = np.asarray(mesh.faces)[rng.random(len(mesh.faces)) > 1 / 3]
    flip = rng.random(len(faces)) < 0.5
    faces[flip] = faces[flip][:, ::-1]
    return trimesh.Trimesh(mesh.vertices, faces, process=False)


def glb_parts(glb: bytes) -> tuple[dict, bytes]:
    """A GLB's JSON document and its binary chunk."""
    json_length = struct.unpack("<I", glb[12:16])[0]
    document = json.loads(glb[20 : 20 + json_length])
    return document, glb[20 + json_length + 8 :]


def make_glb(document: dict, binary: bytes = b"", version: int = 2) -> bytes:
    chunk = json.dumps(document).encode()
    chunk += b" " * (-len(chunk) % 4)
    body = struct.pack("<I", len(chunk)) + b"JSON" + chunk
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        body += struct.pack("<I", len(binary)) + b"BIN\0" + binary
    return b"glTF" + struct.pack("<II", version, 12 + len(body)) + body


def glb_with_extension(extension: str) -> bytes:
    """A valid GLB whose JSON declares (and requires) a mesh compression extension."""
    document, binary = glb_parts(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"))
    document["extensionsUsed"] = [extension]
    document["extensionsRequired"] = [extension]
    return make_glb(document, binary)


def nested_glb(depth: int, *, box_on_every_node: bool = False) -> bytes:
    """A box at the bottom of `depth` nested nodes (each node the only child of the last),
    or on every one of them (what held a parser for its whole time limit: 2,000 of them)."""
    document, binary = glb_parts(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"))
    mesh = document["nodes"][document["scenes"][0]["nodes"][0]]["mesh"]
    box = {"mesh": mesh, "translation": [0.01, 0, 0]} if box_on_every_node else {}
    document["nodes"] = [{**box, "children": [i + 1]} for i in range(depth - 1)] + [{"mesh": mesh}]
    document["scenes"] = [{"nodes": [0]}]
    return make_glb(document, binary)


def chair() -> trimesh.Trimesh:
    """A chair standing on +Z: four legs below the seat, the back rising at -Y. Its parts
    tell up from down and front from back."""
    box = trimesh.creation.box
    move = trimesh.transformations.translation_matrix
    legs = [
        box(extents=[0.08, 0.08, 0.5], transform=move([x, y, 0.25]))
        for x in (-0.25, 0.25)
        for y in (-0.25, 0.25)
    ]
    seat = box(extents=[0.6, 0.6, 0.08], transform=move([0, 0, 0.54]))
    back = box(extents=[0.6, 0.08, 0.6], transform=move([0, -0.26, 0.88]))
    return trimesh.util.concatenate([*legs, seat, back])


Z_UP_TO_Y_UP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)
