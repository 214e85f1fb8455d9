"""The corpus of real files: Debian's `assimp-testmodels` (`scripts/setup.sh --test`).

`walk` loads and renders every mesh file of it and says what became of each; the test
(`test_corpus.py`) holds the outcome to the bar, and this module's command prints the
counts per format in docs/rendering.md:

    PYOPENGL_PLATFORM=osmesa .venv/bin/python -m tests.renderer.corpus

`ASSIMP_OPENS` lists the files the `assimp` command itself opens with a surface (Debian's
`assimp-utils`; rebuild with `--rebuild-assimp-list`): our bar is measured against it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import renderer

ROOT = Path("/usr/share/assimp/models")
ASSIMP_OPENS = Path(__file__).with_name("assimp_opens.json")
# Every extension assimp 5.2.5 lists (`assimp listext`) besides the ones we read: files we
# refuse by name still count in the corpus.
ASSIMP_EXTENSIONS = (
    ".3d .3ds .3mf .ac .ac3d .acc .amf .ase .ask .assbin .b3d .blend .bsp .bvh .cob .csm .dae "
    ".dxf .enff .fbx .glb .gltf .hmp .ifc .ifczip .iqm .irr .irrmesh .lwo .lws .lxo .md2 .md3 "
    ".md5anim .md5camera .md5mesh .mdc .mdl .mesh .mot .ms3d .ndo .nff .obj .off .ogex .pk3 "
    ".ply .pmx .prj .q3o .q3s .raw .scn .sib .smd .step .stl .stp .ter .uc .vta .x .x3d .x3db "
    ".xgl .xml .zae .zgl"
).split()
SMALL, LARGE = 32, 128  # px: a file blank at SMALL is drawn again at LARGE (thin shapes)


@dataclass
class Outcome:
    file: str  # relative to ROOT
    rendered: bool
    error: str = ""  # the one line a user sees, for a refused file
    error_type: str = ""


def corpus_files() -> list[str]:
    extensions = set(renderer.accepted_extensions()) | set(ASSIMP_EXTENSIONS)
    return sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_file() and path.suffix.lower() in extensions
    )


def _outcome(relative: str) -> Outcome:
    path = ROOT / relative
    try:
        views = renderer.render_file(path, rig="circle-12", size=SMALL)
        if not (views < 255).any():
            views = renderer.render_file(path, rig="circle-12", size=LARGE)
        return Outcome(relative, bool((views < 255).any()))
    except renderer.MeshError as exc:
        return Outcome(relative, False, str(exc), type(exc).__name__)


def walk(files: list[str], threads: int = 2) -> list[Outcome]:
    """Load and render every file (each thread keeps its own renderer); refusals are
    outcomes, anything else that goes wrong is raised."""
    with ThreadPoolExecutor(threads) as executor:
        return list(executor.map(_outcome, files))


def assimp_opens() -> set[str]:
    return set(json.loads(ASSIMP_OPENS.read_text()))


def _rebuild_assimp_list(files: list[str]) -> None:
    """Which files `assimp info` opens with triangles or polygons in them. Skeleton-only
    files (motion capture, cameras) get stick figures made up by the command; those do
    not count."""

    def opens(relative: str) -> bool:
        result = subprocess.run(
            ["assimp", "info", relative], cwd=ROOT, capture_output=True, text=True,
            errors="replace", timeout=120,
        )  # fmt: skip
        kinds = re.search(r"^Primitive Types:\s+(.*)$", result.stdout, re.M)
        surface = kinds is not None and re.search(r"triangle|polygon", kinds.group(1))
        return (
            result.returncode == 0 and bool(surface) and "'SkeletonMaterial'" not in result.stdout
        )

    with ThreadPoolExecutor(2) as executor:
        opened = [f for f, ok in zip(files, executor.map(opens, files), strict=True) if ok]
    ASSIMP_OPENS.write_text(json.dumps(opened, indent=0) + "\n")


def counts_table(outcomes: list[Outcome], opened: set[str]) -> str:
    """Markdown: per extension, files rendered / refused / total, and how many of those
    assimp opens we render."""
    rows: dict[str, Counter] = defaultdict(Counter)
    for outcome in outcomes:
        row = rows[Path(outcome.file).suffix.lower()]
        row["total"] += 1
        row["rendered" if outcome.rendered else "refused"] += 1
        if outcome.file in opened:
            row["assimp"] += 1
            row["both"] += outcome.rendered
    total = sum(rows.values(), Counter())
    lines = [
        "| extension | rendered | refused | files | assimp opens | of those, rendered |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for extension, row in sorted(rows.items(), key=lambda item: (-item[1]["total"], item[0])):
        lines.append(
            f"| {extension} | {row['rendered']} | {row['refused']} | {row['total']} | "
            f"{row['assimp']} | {row['both']} |"
        )
    share = 100 * total["both"] / max(total["assimp"], 1)
    lines.append(
        f"| **all** | **{total['rendered']}** | **{total['refused']}** | **{total['total']}** "
        f"| **{total['assimp']}** | **{total['both']} ({share:.1f} %)** |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild-assimp-list", action="store_true")
    parser.add_argument("--refusals", action="store_true", help="also list every refusal")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    files = corpus_files()
    if args.rebuild_assimp_list:
        _rebuild_assimp_list(files)
    outcomes = walk(files)
    print(counts_table(outcomes, assimp_opens()))
    if args.refusals:
        for outcome in outcomes:
            if not outcome.rendered:
                print(f"- {outcome.file}: {outcome.error_type}: {outcome.error}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
