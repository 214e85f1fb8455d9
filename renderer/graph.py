"""A scene's node graph, walked once: every mesh instance with its world transform.

glTF and assimp scenes are trees of nodes, each with a local transform and meshes. Walking
them here, without recursion and in linear time, is what bounds their cost: the depth, the
number of nodes and the faces the instances add up to are checked as we go, so a small
hostile file (2,000 nested nodes, a mesh instanced a million times) is refused in
milliseconds instead of holding a worker until the time limit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from renderer.errors import MalformedMeshError, SceneTooComplexError

Node = TypeVar("Node")


@dataclass(frozen=True)
class GraphLimits:
    max_depth: int
    max_nodes: int
    max_faces: int


def flatten(
    roots: Sequence[Node],
    *,
    children: Callable[[Node], Sequence[Node]],
    local: Callable[[Node], np.ndarray],
    meshes: Callable[[Node], Sequence[int]],
    key: Callable[[Node], Hashable],
    limits: GraphLimits,
) -> list[tuple[int, np.ndarray]]:
    """(mesh index, 4x4 world matrix) of every mesh instance under `roots`, depth first.

    A node met twice (a cycle, or a node shared by two parents: both forbidden by glTF
    and impossible in assimp) is malformed; deeper nesting or more nodes than `limits`
    allow raise SceneTooComplexError.
    """
    stack = [(root, np.eye(4), 1) for root in reversed(roots)]
    seen: set[Hashable] = set()
    instances: list[tuple[int, np.ndarray]] = []
    while stack:
        node, parent, depth = stack.pop()
        if depth > limits.max_depth:
            raise SceneTooComplexError(
                f"the scene nests its nodes deeper than {limits.max_depth} levels (the limit)"
            )
        node_key = key(node)
        if node_key in seen:
            raise MalformedMeshError(
                "the scene's node hierarchy has a cycle or a node with two parents"
            )
        seen.add(node_key)
        if len(seen) > limits.max_nodes:
            raise SceneTooComplexError(
                f"the scene has more than {limits.max_nodes:,} nodes; "
                f"the limit is {limits.max_nodes:,}"
            )
        world = parent @ local(node)
        instances.extend((mesh, world) for mesh in meshes(node))
        stack.extend((child, world, depth + 1) for child in reversed(children(node)))
    return instances
