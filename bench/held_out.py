"""Shapes of no training class, for the open-set scores: `gmvit.data.synth.HELD_OUT` when
the synthetic data set has it, else a stand-in of four families defined here (dumbbell,
hourglass, umbrella, ladder: none is one of ModelNet40's classes), each built like the
synthetic set (trimesh primitives, Z up, standing on z = 0, drawn from one generator per
shape) so that "known" and "unknown" differ in what they are, not in how they were made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from gmvit.data import synth

STAND_IN: tuple[str, ...] = ("dumbbell", "hourglass", "umbrella", "ladder")


def families() -> tuple[str, ...]:
    return tuple(getattr(synth, "HELD_OUT", STAND_IN))


def generate(out_dir: Path, per_family: int, seed: int = 0) -> list[Path]:
    """Write `per_family` shapes of each held-out family as
    `<out_dir>/<family>/test/<family>_NNNN.off` and return their paths."""
    if hasattr(synth, "HELD_OUT"):
        return synth.generate(
            out_dir,
            seed=seed,
            train_per_class=0,
            test_per_class=per_family,
            classes=synth.HELD_OUT,
            progress=False,
        )
    paths = []
    for number, family in enumerate(STAND_IN):
        for index in range(per_family):
            rng = np.random.default_rng([seed, 1000 + number, index])
            mesh = _STAND_IN_MAKERS[family](rng)
            path = out_dir / family / "test" / f"{family}_{index + 1:04d}.off"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(trimesh.exchange.off.export_off(mesh, digits=6).encode())
            paths.append(path)
    return paths


def _at(mesh: trimesh.Trimesh, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> trimesh.Trimesh:
    mesh.apply_translation((x, y, z))
    return mesh


def _dumbbell(rng: np.random.Generator) -> trimesh.Trimesh:
    length, bar, weight = rng.uniform(0.5, 1.0), rng.uniform(0.02, 0.05), rng.uniform(0.1, 0.25)
    turn = trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0))
    handle = trimesh.creation.cylinder(bar, length, sections=16, transform=turn)
    ends = [_at(trimesh.creation.icosphere(2, weight), x=side * length / 2) for side in (-1, 1)]
    return _at(trimesh.util.concatenate([handle, *ends]), z=weight)


def _hourglass(rng: np.random.Generator) -> trimesh.Trimesh:
    radius, height, waist = rng.uniform(0.2, 0.4), rng.uniform(0.6, 1.2), rng.uniform(0.05, 0.3)
    z = np.linspace(0.0, height, 9)
    r = radius * (waist + (1 - waist) * np.abs(2 * z / height - 1))
    glass = trimesh.creation.revolve(np.column_stack([r, z]), sections=24)
    plates = [
        _at(trimesh.creation.cylinder(radius * 1.2, 0.04, sections=24), z=level)
        for level in (0.02, height - 0.02)
    ]
    return trimesh.util.concatenate([glass, *plates])


def _umbrella(rng: np.random.Generator) -> trimesh.Trimesh:
    pole, span, depth = rng.uniform(0.8, 1.4), rng.uniform(0.5, 1.0), rng.uniform(0.1, 0.35)
    ribs = int(rng.integers(6, 12))
    stick = _at(trimesh.creation.cylinder(0.015, pole, sections=12), z=pole / 2)
    canopy = trimesh.creation.cone(span, depth, sections=ribs)
    return trimesh.util.concatenate([stick, _at(canopy, z=pole - depth)])


def _ladder(rng: np.random.Generator) -> trimesh.Trimesh:
    height, width, rungs = rng.uniform(1.0, 2.0), rng.uniform(0.3, 0.6), int(rng.integers(4, 9))
    rail = rng.uniform(0.02, 0.05)
    parts = [
        trimesh.creation.box(
            (rail, rail, height),
            trimesh.transformations.translation_matrix((side * width / 2, 0, height / 2)),
        )
        for side in (-1, 1)
    ]
    for k in range(rungs):
        z = (k + 1) * height / (rungs + 1)
        parts.append(
            trimesh.creation.box(
                (width, rail * 0.8, rail * 0.8),
                trimesh.transformations.translation_matrix((0, 0, z)),
            )
        )
    ladder = trimesh.util.concatenate(parts)
    lean = trimesh.transformations.rotation_matrix(rng.uniform(0.0, 0.3), (1, 0, 0))
    ladder.apply_transform(lean)
    return _at(ladder, z=-ladder.bounds[0][2])


_STAND_IN_MAKERS = {
    "dumbbell": _dumbbell,
    "hourglass": _hourglass,
    "umbrella": _umbrella,
    "ladder": _ladder,
}
