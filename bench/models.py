"""Size and CPU speed of the GMViT teacher and students, ours against the published code.

Prints, from one run on this machine:
- parameters of each network (the teacher also with the published code's unused fc);
- for every variant, 12 and 20 views of 224 x 224 and batches of 1, 8 and 16: milliseconds
  per shape of our model as the Embedder runs it (`gmvit.runtime.for_inference`: the CNN's
  BatchNorms folded into its convolutions) and of the published code's way
  (`gmvit.reference.forward_per_shape` on the model as trained, the tests' oracle: the CNN
  on NCHW images as published, then the grouping and the group-level stage shape by shape
  in Python loops), and of our model with its BatchNorms (what the Embedder ran before it
  folded them), in eval mode under `torch.inference_mode`; ratios = the other time / ours,
  in wall time and in the CPU time of this process (the steadier measure on a shared
  machine);
- the teacher/student ratio in parameters (not in time: the variants are timed at
  different moments, and on a shared machine only runs that alternate compare).

Times are the fastest of `--repeats` runs after one warm-up (on a shared machine, the run
least disturbed by other processes: medians of 3 swung by 2x between neighbouring rows);
the three alternate so that load from other processes hits them alike.

On a GPU (`--device cuda`, optionally `--bf16` autocast) the times are wall times after
`torch.cuda.synchronize()`; the CPU column is then the host's time, not the GPU's.

    python -m bench.models [--repeats 3] [--threads N] [--device cuda] [--bf16]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from gmvit.model import count_parameters, create_model
from gmvit.reference import forward_per_shape, spread_scores
from gmvit.runtime import for_inference

VARIANTS = ("teacher", "simple", "mini")
VIEWS = (12, 20)
BATCHES = (1, 8, 16)
IMAGE_SIZE = 224
NUM_CLASSES = 40


@dataclass
class Timing:
    wall: float  # fastest seconds per call
    cpu: float  # fastest CPU seconds of this process per call


def fastest_times(runs: Sequence[Callable[[], object]], repeats: int) -> list[Timing]:
    """Fastest wall and CPU time of each callable; one warm-up each, then the runs alternate."""
    wall: list[list[float]] = [[] for _ in runs]
    cpu: list[list[float]] = [[] for _ in runs]
    for run in runs:
        run()
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[i].append(time.perf_counter() - start)
            cpu[i].append(time.process_time() - start_cpu)
    return [Timing(min(w), min(c)) for w, c in zip(wall, cpu, strict=True)]


def finished(device: torch.device, run: Callable[..., object], *args: object) -> None:
    """`run(*args)`, returning when the device has done the work."""
    run(*args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__}, {where}, {torch.get_num_threads()} threads, "
        f"{IMAGE_SIZE}x{IMAGE_SIZE}{', bf16 autocast' if args.bf16 else ''}"
    )

    models = {
        (variant, views): create_model(variant, views, NUM_CLASSES).eval().to(device)
        for variant in VARIANTS
        for views in VIEWS
    }
    params = {v: count_parameters(models[v, 12]) for v in VARIANTS}
    published_fc = 512 * NUM_CLASSES + NUM_CLASSES
    print("\n| model | parameters | teacher / model |")
    print("|---|---:|---:|")
    print(
        f"| teacher + unused fc (published) | {(params['teacher'] + published_fc) / 1e6:.2f} M | |"
    )
    for variant in VARIANTS:
        ratio = params["teacher"] / params[variant]
        print(f"| {variant} | {params[variant] / 1e6:.2f} M | {ratio:.2f}x |")

    inputs = {
        (views, batch): torch.randn(batch, views, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
        for views in VIEWS
        for batch in BATCHES
    }
    for views in VIEWS:  # varied groups, as a trained model has, for all variants
        for variant in VARIANTS:
            spread_scores(models[variant, views], inputs[views, BATCHES[-1]])

    served = {key: for_inference(model) for key, model in models.items()}

    print(
        "\n| variant | views | batch | ours ms/shape | published ms/shape "
        "| published / ours: wall (CPU) | ours unfolded / ours: wall (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    with torch.inference_mode(), autocast:
        for variant in VARIANTS:
            for (views, batch), x in inputs.items():
                model = models[variant, views]
                ours, published, unfolded = fastest_times(
                    [
                        partial(finished, device, served[variant, views], x),
                        partial(finished, device, forward_per_shape, model, x),
                        partial(finished, device, model, x),
                    ],
                    args.repeats,
                )
                print(
                    f"| {variant} | {views} | {batch} | {1e3 * ours.wall / batch:.1f} "
                    f"| {1e3 * published.wall / batch:.1f} "
                    f"| {published.wall / ours.wall:.2f}x ({published.cpu / ours.cpu:.2f}x) "
                    f"| {unfolded.wall / ours.wall:.2f}x ({unfolded.cpu / ours.cpu:.2f}x) |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
