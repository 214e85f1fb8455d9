"""Sweet Home 3D furniture catalogs: read them, name their models' classes, stand them up.

A catalog is a Java .properties file (`PluginFurnitureCatalog.properties` inside an .sh3f
archive, `DefaultFurnitureCatalog.properties` inside sweethome3d.jar) listing pieces as
`name#N`, `category#N`, `model#N` (a path inside the archive), `width#N`, `depth#N`,
`height#N` (cm) and an optional `modelRotation#N` (nine numbers, a row-major 3x3 matrix
that turns the model file into Sweet Home 3D's frame).

Sweet Home 3D's frame is Y-up with the front of a piece towards +Z; ours (renderer/,
gmvit/data/synth.py) is Z-up with the front towards +Y. `SH3D_TO_OURS` is the proper
rotation between them, so nothing is mirrored. The catalog's sizes are not applied:
Sweet Home 3D stretches a model to them, we keep the modeller's own proportions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# (x, y, z) in Sweet Home 3D -> (-x, z, y): up Y -> up Z, front +Z -> front +Y, det +1.
SH3D_TO_OURS = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# Catalog name -> class, the first rule that matches wins (case-insensitive, whole words).
# A rule with class None drops the piece: things whose name says a class word but that
# are not one of the ten (a table lamp, a pool table) or that ModelNet files elsewhere
# (stools, benches, loungers). Names are the catalogs' English ones.
CLASS_RULES: tuple[tuple[str, str | None], ...] = (
    (r"lamp|fan|brush|paper|remote control|freezer|lounge|deck chair|relax chair", None),
    (r"beach chair|wheelchair|ottoman|changing table|dressing table|technical table", None),
    (r"table tennis|pool table|football table|tv unit|tv stand|television cabinet", None),
    (r"opened convertible sofa", None),
    (r"bedside table|nightstand", "night_stand"),
    (r"desk", "desk"),
    (r"bath|bathtub", "bathtub"),
    (r"toilets? unit", "toilet"),
    (r"tv|tv 16:9|imac", "monitor"),
    (r"dresser|chest", "dresser"),
    (r"sofa|couch", "sofa"),
    (r"bed", "bed"),
    (r"chair|armchair", "chair"),
    (r"table", "table"),
)
_COMPILED_RULES = tuple(
    (re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), label) for pattern, label in CLASS_RULES
)


@dataclass(frozen=True)
class Piece:
    """One catalog entry."""

    number: int
    name: str
    category: str
    model: str  # path inside the archive, without the leading "/"
    size_cm: tuple[float, float, float]  # width (x), depth, height, as Sweet Home 3D shows it
    rotation: np.ndarray | None  # (3, 3) modelRotation, or None for the identity


def read_properties(text: str) -> dict[str, str]:
    """The key/value pairs of a Java .properties file: `#`/`!` comments, `=`, `:` or
    blank separators, backslash line continuations and `\\uXXXX` escapes."""
    pairs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.lstrip()
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1] + next(lines, "").lstrip()
        match = re.match(r"((?:[^=:\s\\]|\\.)*)\s*[=:\s]?\s*(.*)$", line)
        key, value = (_unescape(part) for part in match.groups())
        pairs[key] = value
    return pairs


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _unescape(text: str) -> str:
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}

    def one(match: re.Match) -> str:
        code = match.group(1)
        if code.startswith("u"):
            return chr(int(code[1:], 16))
        return escapes.get(code, code)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, text)


def catalog_pieces(properties: dict[str, str]) -> list[Piece]:
    """The pieces of a catalog, in their catalog order (entries without a model skipped)."""
    numbers = sorted(
        {int(key.split("#", 1)[1]) for key in properties if re.fullmatch(r"model#\d+", key)}
    )
    return [_piece(properties, n) for n in numbers]


def _piece(properties: dict[str, str], n: int) -> Piece:
    fields = {key: properties.get(f"{key}#{n}", "") for key in _FIELDS}
    rotation = None
    if fields["modelRotation"]:
        rotation = np.array([float(x) for x in fields["modelRotation"].split()]).reshape(3, 3)
    return Piece(
        number=n,
        name=fields["name"],
        category=fields["category"],
        model=fields["model"].lstrip("/"),
        size_cm=tuple(float(fields[key] or 0) for key in ("width", "depth", "height")),
        rotation=rotation,
    )


_FIELDS = ("name", "category", "model", "width", "depth", "height", "modelRotation")


def piece_class(name: str) -> str | None:
    """The furniture class `CLASS_RULES` gives a catalog name, or None."""
    for pattern, label in _COMPILED_RULES:
        if pattern.search(name):
            return label
    return None


def to_our_frame(vertices: np.ndarray, rotation: np.ndarray | None) -> np.ndarray:
    """Model-file vertices -> Z-up, front +Y, centred in x and y, standing on z = 0."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if rotation is not None:
        vertices = vertices @ rotation.T
    vertices = vertices @ SH3D_TO_OURS.T
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return vertices - np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
