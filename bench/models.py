"""Size and CPU speed of the GMViT teacher and students, and batched against per-shape grouping.

Prints, from one run on this machine:
- parameters of each network (the teacher also with the published code's unused fc);
- milliseconds per shape at batch 1 and 16, for 12 and 20 views of 224 x 224, in eval mode
  under `torch.inference_mode`, and the teacher/student ratios in parameters and time;
- the teacher batched (padded + masked grouping, this repository) against the per-shape way
  of the published code (`gmvit.reference.forward_per_shape`, the tests' oracle): the whole
  forward, and the stage after the CNN alone (CNN tokens precomputed), where they differ;
  ratio = per-shape time / batched time.

Times are the median of `--repeats` runs after one warm-up; batched and per-shape runs
alternate so that load from other processes hits both alike.

    python -m bench.models [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from gmvit.model import GMViT, count_parameters, create_model
from gmvit.reference import forward_per_shape, spread_scores

VARIANTS = ("teacher", "simple", "mini")
VIEWS = (12, 20)
BATCHES = (1, 16)
IMAGE_SIZE = 224
NUM_CLASSES = 40


def median_seconds(runs: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each callable; one warm-up each, then the runs alternate."""
    times: list[list[float]] = [[] for _ in runs]
    for run in runs:
        run()
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


class ReplayTokens(nn.Module):
    """Stands in for a CNN: returns tokens computed before, to time what comes after it."""

    def __init__(self, tokens: Tensor) -> None:
        super().__init__()
        self.tokens = tokens

    def forward(self, _: Tensor) -> Tensor:
        return self.tokens[:, :, None, None]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {IMAGE_SIZE}x{IMAGE_SIZE}"
    )

    models = {
        (variant, views): create_model(variant, views, NUM_CLASSES).eval()
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
        (views, batch): torch.randn(batch, views, 3, IMAGE_SIZE, IMAGE_SIZE)
        for views in VIEWS
        for batch in BATCHES
    }
    for views in VIEWS:
        spread_scores(models["teacher", views], inputs[views, BATCHES[-1]])

    ms: dict[tuple[str, int, int], float] = {}
    with torch.inference_mode():
        for (views, batch), x in inputs.items():
            runs = [partial(models[v, views], x) for v in VARIANTS]
            for variant, seconds in zip(VARIANTS, median_seconds(runs, args.repeats), strict=True):
                ms[variant, views, batch] = 1e3 * seconds / batch

    print(
        "\n| views | batch | teacher ms/shape | simple ms/shape | mini ms/shape "
        "| teacher/simple | teacher/mini |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for views in VIEWS:
        for batch in BATCHES:
            t, s, m = (ms[v, views, batch] for v in VARIANTS)
            print(
                f"| {views} | {batch} | {t:.1f} | {s:.1f} | {m:.1f} | {t / s:.2f}x | {t / m:.2f}x |"
            )

    print("\n| teacher, batch 16 | views | batched ms/shape | per-shape ms/shape | ratio |")
    print("|---|---:|---:|---:|---:|")
    batch = BATCHES[-1]
    with torch.inference_mode():
        for views in VIEWS:
            model, x = models["teacher", views], inputs[views, batch]
            groups = (model(x).att * model.config.group_bins).floor()
            counts = sorted({len(set(row.tolist())) for row in groups})
            whole = median_seconds(
                [partial(model, x), partial(forward_per_shape, model, x)], args.repeats
            )
            after_cnn = GMViT(model.config).eval()
            after_cnn.load_state_dict(model.state_dict())
            after_cnn.encoder_net_1 = ReplayTokens(model.cnn_tokens(x))
            stub = x[:, :, :, :1, :1]
            tail = median_seconds(
                [partial(after_cnn, stub), partial(forward_per_shape, after_cnn, stub)],
                args.repeats,
            )
            for stage, (ours, theirs) in (("whole forward", whole), ("after the CNN", tail)):
                print(
                    f"| {stage} | {views} | {1e3 * ours / batch:.2f} | "
                    f"{1e3 * theirs / batch:.2f} | {theirs / ours:.2f}x |"
                )
            print(f"| groups per shape: {counts} | {views} | | | |")


if __name__ == "__main__":
    main()
