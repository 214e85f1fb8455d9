"""Evaluating a GMViT checkpoint on a test split: classification, retrieval and speed.

Scores, all on the test split:
- `oa`: overall accuracy; `macc`: mean of the per-class accuracies;
- `map`: retrieval mean average precision, each test shape querying all other test shapes
  by cosine similarity of descriptors, relevant = same class; `p_at_10`: precision of the
  10 nearest;
- `params`: parameter count; `ms_per_shape`: wall time of the Embedder (normalisation and
  forward, no rendering) per shape, batches of `batch_size` on `threads` CPU threads;
- `open_set` (with held-out families, `held_out=`): the thresholds of `gmvit.openset`
  calibrated on them, the share of test shapes that keep a label and of held-out shapes
  refused, and AUROCs. The labelled shapes the decision compares with are the first
  `gallery_per_class` training shapes of each class (as the ones a user indexes).

The shapes go through the same `gmvit.Embedder` the service uses, so these are the numbers
the service gets for the same views.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gmvit.checkpoint import load_checkpoint, save_checkpoint
from gmvit.data.datasets import open_split
from gmvit.embedder import Embedder
from gmvit.errors import GMViTError
from gmvit.model import count_parameters
from gmvit.openset import calibrate
from gmvit.preprocess import resize_views


@dataclass
class EvalResult:
    model_id: str
    variant: str
    weights: str
    data: str
    split: str
    num_shapes: int
    params: int
    oa: float
    macc: float
    map: float
    p_at_10: float
    ms_per_shape: float
    threads: int
    batch_size: int
    classes: list[str]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    open_set: dict | None = None  # gmvit.openset.Calibration.to_dict() and its set-up


def retrieval_scores(
    descriptors: np.ndarray, labels: np.ndarray, k: int = 10
) -> tuple[float, float]:
    """(mAP, precision@k): each shape queries all others by inner product of the
    (L2-normalised) descriptors; relevant = same label. Queries with no relevant shape
    (a class of one) are left out of the mean."""
    n = len(labels)
    if n < 2:
        raise GMViTError("retrieval needs at least two shapes")
    similarity = descriptors @ descriptors.T
    aps, precisions = [], []
    for q in range(n):
        others = np.delete(np.arange(n), q)
        order = others[np.argsort(-similarity[q, others], kind="stable")]
        relevant = labels[order] == labels[q]
        precisions.append(relevant[:k].mean())
        if relevant.any():
            hits = np.cumsum(relevant)
            ranks = np.flatnonzero(relevant) + 1
            aps.append(float(np.mean(hits[relevant] / ranks)))
    return float(np.mean(aps)) if aps else 0.0, float(np.mean(precisions))


def classification_scores(
    predicted: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[float, float, np.ndarray]:
    """(overall accuracy, mean class accuracy over the classes present, confusion)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    present = confusion.sum(axis=1) > 0
    return float((predicted == labels).mean()), float(per_class[present].mean()), confusion


def evaluate(
    weights: str | Path,
    data: str | Path,
    *,
    split: str = "test",
    batch_size: int = 16,
    threads: int | None = None,
    held_out: str | Path | None = None,
    gallery_per_class: int = 3,
    known_accept: float = 0.95,
) -> EvalResult:
    checkpoint = load_checkpoint(weights)
    config = checkpoint.config
    views = open_split(data, split)
    if len(views) == 0:
        raise GMViTError(f"{data} has no usable {split} shapes")
    if views.rig != config.rig:
        raise GMViTError(
            f"the model expects rig {config.rig}; {data} was rendered with {views.rig}"
        )
    if views.classes != checkpoint.class_names:
        raise GMViTError(
            f"the model's classes {checkpoint.class_names} differ from the data's {views.classes}"
        )
    embedder = Embedder(checkpoint, threads=threads, batch_size=batch_size)
    # One untimed batch first: the first forward pays for allocations.
    embedder.embed(_batch(views, range(min(batch_size, len(views))), config.image_size))
    descriptors_all, probabilities, seconds = _embed(embedder, views, range(len(views)))
    predicted = probabilities.argmax(axis=1)
    oa, macc, confusion = classification_scores(predicted, views.labels, config.num_classes)
    mean_ap, p10 = retrieval_scores(descriptors_all, views.labels)
    open_set = None
    if held_out is not None:
        open_set = _open_set(
            embedder,
            data,
            held_out,
            descriptors_all,
            probabilities,
            gallery_per_class,
            known_accept,
        )
    return EvalResult(
        model_id=checkpoint.model_id,
        variant=config.variant,
        weights=str(weights),
        data=str(data),
        split=split,
        num_shapes=len(views),
        params=count_parameters(checkpoint.model),
        oa=oa,
        macc=macc,
        map=mean_ap,
        p_at_10=p10,
        ms_per_shape=1000.0 * seconds / len(views),
        threads=torch.get_num_threads(),
        batch_size=batch_size,
        classes=list(views.classes),
        confusion=confusion.tolist(),
        open_set=open_set,
    )


def _embed(embedder: Embedder, views, indices) -> tuple[np.ndarray, np.ndarray, float]:
    """(descriptors, probabilities, seconds in the Embedder) of the given shapes of a split."""
    indices = list(indices)
    size, step = embedder.image_size, embedder.batch_size
    descriptors, probabilities, seconds = [], [], 0.0
    for start in range(0, len(indices), step):
        batch = _batch(views, indices[start : start + step], size)
        began = time.perf_counter()
        embedding = embedder.embed(batch)
        seconds += time.perf_counter() - began
        descriptors.append(embedding.descriptors)
        probabilities.append(embedding.probabilities)
    return np.concatenate(descriptors), np.concatenate(probabilities), seconds


def _open_set(
    embedder: Embedder,
    data: str | Path,
    held_out: str | Path,
    known_descriptors: np.ndarray,
    known_probabilities: np.ndarray,
    gallery_per_class: int,
    known_accept: float,
) -> dict:
    """Calibrate the open-set thresholds: known = the test split, unknown = every shape of
    the held-out store, labelled gallery = the first shapes of each training class."""
    if gallery_per_class < 1:
        raise GMViTError(f"the gallery needs at least one shape a class, not {gallery_per_class}")
    train = open_split(data, "train")
    unknown = open_split(held_out, "test")
    if unknown.rig != train.rig:
        raise GMViTError(f"{held_out} was rendered with {unknown.rig}, the data with {train.rig}")
    overlap = sorted(set(unknown.classes) & set(train.classes))
    if overlap:
        raise GMViTError(f"held-out families must be none of the training classes: {overlap}")
    gallery = [
        int(i)
        for label in range(len(train.classes))
        for i in np.flatnonzero((train.labels == label) & (train.copies == 0))[:gallery_per_class]
    ]
    gallery_descriptors, _, _ = _embed(embedder, train, gallery)
    unknown_descriptors, unknown_probabilities, _ = _embed(embedder, unknown, range(len(unknown)))
    calibration = calibrate(
        known_probabilities.max(axis=1),
        (known_descriptors @ gallery_descriptors.T).max(axis=1),
        unknown_probabilities.max(axis=1),
        (unknown_descriptors @ gallery_descriptors.T).max(axis=1),
        known_accept=known_accept,
    )
    return calibration.to_dict() | {
        "held_out": str(held_out),
        "held_out_families": list(unknown.classes),
        "held_out_shapes": len(unknown),
        "gallery_per_class": gallery_per_class,
        "known_accept_target": known_accept,
    }


def save_thresholds(weights: str | Path, open_set: dict) -> str:
    """Store calibrated thresholds in the checkpoint's meta (`open_set`); the model id, a
    hash of config and weights, stays the same."""
    checkpoint = load_checkpoint(weights)
    meta = checkpoint.meta | {
        "open_set": open_set["thresholds"]
        | {k: v for k, v in open_set.items() if k != "thresholds"}
    }
    return save_checkpoint(weights, checkpoint.model, checkpoint.class_names, meta)


def _batch(views, indices, image_size: int) -> np.ndarray:
    """uint8 (B, V, S, S, 3) at the model's image size."""
    batch = torch.from_numpy(np.stack([views.load(i) for i in indices]))
    return resize_views(batch, image_size).numpy()


def markdown_table(results: list[tuple[str, EvalResult]]) -> str:
    """One row per (name, result): params, oa, macc, map, p@10, ms per shape."""
    lines = [
        "| model | params | oa | macc | map | p@10 | ms/shape |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r.params / 1e6:.2f} M | {100 * r.oa:.2f} | {100 * r.macc:.2f} | "
            f"{100 * r.map:.2f} | {100 * r.p_at_10:.2f} | {r.ms_per_shape:.1f} |"
        )
    return "\n".join(lines) + "\n"


def confusion_image(confusion: np.ndarray, classes: list[str], cell: int = 36) -> Image.Image:
    """The confusion matrix as a picture: rows true, columns predicted, shade = row share."""
    confusion = np.asarray(confusion)
    n = len(classes)
    font = ImageFont.load_default()
    legend = ("rows: true", "columns: predicted")
    margin = 8 + max(int(font.getlength(text)) for text in (*classes, *legend))
    size = (margin + n * cell + 8, margin + n * cell + 8)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    for i in range(n):
        draw.text((4, margin + i * cell + cell // 3), classes[i], fill="black", font=font)
        column = Image.new("RGB", (margin, 12), "white")
        ImageDraw.Draw(column).text((0, 0), classes[i], fill="black", font=font)
        image.paste(column.rotate(90, expand=True), (margin + i * cell + cell // 3, 0))
        for j in range(n):
            shade = int(255 * (1 - share[i, j]))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            box = (
                margin + j * cell,
                margin + i * cell,
                margin + (j + 1) * cell - 1,
                margin + (i + 1) * cell - 1,
            )
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            if confusion[i, j]:
                text = str(int(confusion[i, j]))
                ink = "white" if share[i, j] > 0.6 else "black"
                draw.text((box[0] + 4, box[1] + cell // 3), text, fill=ink, font=font)
    for k, text in enumerate(legend):
        draw.text((4, 4 + 12 * k), text, fill="gray", font=font)
    return image


def write_reports(result: EvalResult, json_path: str | Path, name: str | None = None) -> list[Path]:
    """JSON at `json_path`, and beside it the Markdown table (.md) and the confusion
    matrix (.png). Returns the three paths."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(asdict(result), indent=1) + "\n")
    md_path, png_path = json_path.with_suffix(".md"), json_path.with_suffix(".png")
    md_path.write_text(markdown_table([(name or result.variant, result)]))
    confusion_image(np.array(result.confusion), result.classes).save(png_path)
    return [json_path, md_path, png_path]
