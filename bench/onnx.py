"""The CPU runtime for the edge: eager torch against the ONNX exports (fp32, int8), in one run.

For each shipped student, at its own rig and image size: file size; ms per shape through
the Embedder
(normalisation and forward, no rendering) at batch 1 and 16, in wall and in CPU time, the
runtimes alternating; the cosine of each export's descriptors to torch's; and accuracy and
retrieval mAP on the synthetic test split (`gmvit.data.synth`, rendered here as the
checkpoint's config says: the split the weight cards report). Then the export of random
students on 20 views (the batched grouping with 20 views' padding and masks): the largest
difference to torch.

    python -m bench.onnx [--threads 1] [--per-class 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gmvit import Embedder, create_model, save_checkpoint
from gmvit.data.synth import CLASSES, make_shape, shape_rng
from gmvit.evaluate import retrieval_scores
from gmvit.export import export_onnx, quantize_int8, synthetic_calibration
from renderer import normalize, render_views

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
STUDENTS = ("mini", "simple")
BATCHES = (1, 16)


def test_split(per_class: int, rig: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic test split (seed 0, as `gmvit dataset synth` makes it), rendered."""
    views, labels = [], []
    for label, name in enumerate(CLASSES):
        for index in range(per_class):
            mesh = normalize(make_shape(name, shape_rng(0, name, "test", index)))
            views.append(render_views(mesh, rig, size))
            labels.append(label)
    return np.stack(views), np.array(labels)


def ms_per_shape(
    embedders: Sequence[Embedder], views: np.ndarray, batch: int, repeats: int
) -> list[tuple[float, float]]:
    """(wall, CPU) ms per shape of each embedder on the first 32 shapes, alternating."""
    shapes = views[:32]
    wall: list[list[float]] = [[] for _ in embedders]
    cpu: list[list[float]] = [[] for _ in embedders]
    for embedder in embedders:
        embedder.embed(shapes[:batch])  # warm-up
    for _ in range(repeats):
        for i, embedder in enumerate(embedders):
            start, start_cpu = time.perf_counter(), time.process_time()
            for lo in range(0, len(shapes), batch):
                embedder.embed(shapes[lo : lo + batch])
            wall[i].append(1e3 * (time.perf_counter() - start) / len(shapes))
            cpu[i].append(1e3 * (time.process_time() - start_cpu) / len(shapes))
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--per-class", type=int, default=30, help="test shapes per class")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    splits: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    print(f"{args.per_class} synthetic test shapes a class; {args.threads} thread(s)\n")
    print(
        "| model | views | runtime | size MiB | batch 1 ms/shape (CPU) | batch 16 ms/shape (CPU) "
        "| cosine to torch: min / mean | OA | mAP |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        for variant in STUDENTS:
            weights = WEIGHTS / f"gmvit-{variant}-synth10.pt"
            fp32, int8 = Path(tmp) / f"{variant}.onnx", Path(tmp) / f"{variant}.int8.onnx"
            info = export_onnx(weights, fp32)
            quantize_int8(fp32, int8, synthetic_calibration(info.config))
            seen_as = (info.config.rig, info.config.image_size)
            if seen_as not in splits:
                splits[seen_as] = test_split(args.per_class, *seen_as)
            views, labels = splits[seen_as]
            shown = f"{info.config.rig}, {info.config.image_size} px"
            runtimes = {
                "torch (eager)": (weights, Embedder(weights, threads=args.threads)),
                "onnxruntime fp32": (fp32, Embedder(fp32, threads=args.threads)),
                "onnxruntime int8": (int8, Embedder(int8, threads=args.threads)),
            }
            embedders = [embedder for _, embedder in runtimes.values()]
            speed = {b: ms_per_shape(embedders, views, b, args.repeats) for b in BATCHES}
            reference = embedders[0].embed(views).descriptors
            for i, (name, (path, embedder)) in enumerate(runtimes.items()):
                result = embedder.embed(views)
                cosine = (result.descriptors * reference).sum(axis=1)
                accuracy = float((result.probabilities.argmax(axis=1) == labels).mean())
                mean_ap, _ = retrieval_scores(result.descriptors, labels)
                timings = " | ".join(
                    f"{speed[b][i][0]:.2f} ({speed[b][i][1]:.2f})" for b in BATCHES
                )
                print(
                    f"| {variant} | {shown} | {name} | {path.stat().st_size / 2**20:.1f} "
                    f"| {timings} "
                    f"| {cosine.min():.4f} / {cosine.mean():.5f} | {accuracy:.4f} "
                    f"| {mean_ap:.4f} |",
                    flush=True,
                )

        print("\n| random student, 20 views, 64 px | max difference of descriptors to torch |")
        print("|---|---:|")
        rng = np.random.default_rng(1)
        shapes = rng.integers(0, 256, (9, 20, 64, 64, 3), dtype=np.uint8)
        for variant in STUDENTS:
            torch.manual_seed(1)
            checkpoint = Path(tmp) / f"{variant}20.pt"
            save_checkpoint(checkpoint, create_model(variant, 20, 10, image_size=64), CLASSES)
            export_onnx(checkpoint, Path(tmp) / f"{variant}20.onnx")
            expected = Embedder(checkpoint).embed(shapes).descriptors
            got = Embedder(Path(tmp) / f"{variant}20.onnx").embed(shapes).descriptors
            print(f"| {variant} | {np.abs(got - expected).max():.1e} |")


if __name__ == "__main__":
    main()
