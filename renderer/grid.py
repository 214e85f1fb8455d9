"""A labelled grid of views, for people to look at (CLI output, thumbnails)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

_LABEL_COLOR = (200, 30, 30)


def view_grid(views: np.ndarray, *, labels: bool = True) -> Image.Image:
    """Views (V, H, W, 3) uint8 as one image, row by row in view order, ceil(sqrt(V))
    columns; with `labels`, each view's index in its top-left corner."""
    count, height, width = views.shape[:3]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = Image.new("RGB", (columns * width, rows * height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, view in enumerate(views):
        x, y = (i % columns) * width, (i // columns) * height
        grid.paste(Image.fromarray(np.ascontiguousarray(view)), (x, y))
        if labels:
            draw.text((x + 3, y + 2), str(i), fill=_LABEL_COLOR)
    return grid
