"""`gmvit train`, `gmvit distill`, `gmvit refit-head`, `gmvit eval`: the teacher, its students,
their classifiers, their scores."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from app.cli import CLIError


def _add_recipe(
    parser: argparse.ArgumentParser, batch_size: int, epochs: int = 100, *, beyond: bool = True
) -> None:
    """The optimiser and schedule options; `beyond=False` leaves out the terms and data
    options beyond the paper (the recipe keeps their defaults)."""
    group = parser.add_argument_group(
        "recipe (defaults: the paper's)" if beyond else "recipe (the paper's optimiser)"
    )
    group.add_argument("--epochs", type=int, default=epochs)
    group.add_argument("--batch-size", type=int, default=batch_size)
    group.add_argument("--lr", type=float, default=0.01)
    group.add_argument("--lr-min", type=float, default=0.001, help="cosine annealing floor")
    group.add_argument(
        "--t-max", type=int, default=None, help="cosine period in epochs (default min(50, epochs))"
    )
    group.add_argument("--momentum", type=float, default=0.9)
    group.add_argument("--weight-decay", type=float, default=1e-4)
    if not beyond:
        return
    ours = parser.add_argument_group("beyond the paper")
    ours.add_argument(
        "--contrastive",
        type=float,
        default=0.0,
        help="weight of an instance-contrastive term on f_global (renders of one shape are "
        "positives; batches hold pairs of them); 0 = the paper's losses alone",
    )
    ours.add_argument(
        "--temperature", type=float, default=0.1, help="temperature of the contrastive term"
    )
    ours.add_argument(
        "--copies",
        type=int,
        default=None,
        help="use at most this many perturbed copies of each training shape from the view "
        "store (gmvit dataset render --augment); default: all",
    )
    ours.add_argument(
        "--bn-batches",
        type=int,
        default=32,
        help="after every epoch, recompute BatchNorm's running statistics over this many "
        "training batches before validating (0 = keep the momentum averages)",
    )


def _add_common(parser: argparse.ArgumentParser, *, views: bool = True) -> None:
    """The data, run folder and runtime options; `views=False` leaves out the options of
    training on views (input size, augmentation, bf16)."""
    parser.add_argument(
        "--data", required=True, type=Path, help="view store (gmvit dataset render) or PNG set"
    )
    parser.add_argument("-o", "--out", required=True, type=Path, help="run folder")
    if views:
        parser.add_argument(
            "--image-size", type=int, default=None, help="network input size (default: the data's)"
        )
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of each training class held out"
    )
    if views:
        parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    if views:
        parser.add_argument("--bf16", action="store_true", help="forward under bfloat16 autocast")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train the GMViT teacher (two stages) or a student on labels"
    )
    _add_common(train)
    train.add_argument("--variant", default="teacher", choices=("teacher", "simple", "mini"))
    train.add_argument("--cnn", default="resnet18", choices=("resnet18", "resnet34"))
    train.add_argument(
        "--cnn-epochs", type=int, default=30, help="teacher stage 1 (single-view CNN) epochs"
    )
    train.add_argument("--cnn-batch-size", type=int, default=64, help="stage 1 batch (views)")
    _add_recipe(train, batch_size=32)
    train.set_defaults(func=_train)

    distill = subparsers.add_parser(
        "distill", help="train a GMViT student from a teacher with the paper's loss"
    )
    _add_common(distill)
    distill.add_argument("--teacher", type=Path, help="teacher checkpoint (gmvit train)")
    distill.add_argument("--student", required=True, choices=("simple", "mini"))
    distill.add_argument("--no-kd", action="store_true", help="labels only, no distillation")
    _add_recipe(distill, batch_size=16)
    distill.set_defaults(func=_distill)

    refit = subparsers.add_parser(
        "refit-head",
        help="train a network's classifier again on its frozen descriptors (the descriptor, "
        "and every index built with it, stays as it is)",
        description="Every training render goes through the network once, to its f_global; "
        "the layers after f_global are trained again on those vectors (cross-entropy, the best "
        "validation epoch kept). The new checkpoint has the same descriptors and a new model "
        "id; its open-set thresholds are dropped (calibrate them again with gmvit eval "
        "--held-out ... --save-thresholds).",
    )
    refit.add_argument("--weights", required=True, type=Path, help="a gmvit checkpoint")
    _add_common(refit, views=False)
    _add_recipe(refit, batch_size=32, epochs=10, beyond=False)
    refit.set_defaults(func=_refit_head)

    evaluate = subparsers.add_parser(
        "eval", help="oa, macc, retrieval mAP, p@10, params and speed on a test split"
    )
    evaluate.add_argument("--weights", required=True, type=Path)
    evaluate.add_argument("--data", required=True, type=Path)
    evaluate.add_argument(
        "--json", required=True, type=Path, help="scores; .md table and .png confusion beside"
    )
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--threads", type=int, default=None)
    evaluate.add_argument("--name", default=None, help="row name in the Markdown table")
    evaluate.add_argument(
        "--held-out",
        type=Path,
        default=None,
        help="view store of families none of the classes (gmvit dataset synth --classes "
        "held-out): calibrate and measure the open-set decision on it",
    )
    evaluate.add_argument(
        "--gallery-per-class",
        type=int,
        default=3,
        help="labelled training shapes a class the open-set decision compares with",
    )
    evaluate.add_argument(
        "--save-thresholds",
        action="store_true",
        help="store the calibrated open-set thresholds in the checkpoint's meta (same model id)",
    )
    evaluate.set_defaults(func=_eval)


def _command() -> str:
    return shlex.join(["gmvit", *sys.argv[1:]])


def _recipe(args: argparse.Namespace, epochs: int | None = None, batch: int | None = None):
    """The recipe the options give; a field a command has no option for keeps its default."""
    from dataclasses import fields

    from gmvit.train import Recipe

    given = {f.name: getattr(args, f.name) for f in fields(Recipe) if hasattr(args, f.name)}
    given |= {"epochs": epochs or args.epochs, "batch_size": batch or args.batch_size}
    return Recipe(**given)


def _runtime(args: argparse.Namespace):
    import torch

    from gmvit.train import runtime

    if args.threads is not None:
        if args.threads < 1:
            raise CLIError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    return runtime(args.device, args.seed, bf16=getattr(args, "bf16", False))


def _finish(rt, best: Path) -> int:
    import torch.distributed as dist

    if rt.is_main:
        print(f"best checkpoint: {best}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _train(args: argparse.Namespace) -> int:
    from gmvit.train import train_student, train_teacher

    rt = _runtime(args)
    common = dict(
        image_size=args.image_size,
        val_fraction=args.val_fraction,
        augment=not args.no_augment,
        resume=args.resume,
        rt=rt,
        command=_command(),
    )
    if args.variant == "teacher":
        # Stage 1 anneals over its own length: min(50, --cnn-epochs).
        cnn_recipe = _recipe(args, epochs=args.cnn_epochs, batch=args.cnn_batch_size)
        cnn_recipe.t_max = min(50, args.cnn_epochs)
        cnn_recipe.contrastive = 0.0  # single views: the contrastive term is stage 2's
        best = train_teacher(
            args.data, args.out, cnn_recipe=cnn_recipe, recipe=_recipe(args), cnn=args.cnn, **common
        )
    else:
        best = train_student(
            args.data, args.out, variant=args.variant, recipe=_recipe(args), **common
        )
    return _finish(rt, best)


def _distill(args: argparse.Namespace) -> int:
    from gmvit.distill import distill

    rt = _runtime(args)
    best = distill(
        args.data,
        args.out,
        student=args.student,
        teacher_path=args.teacher,
        no_kd=args.no_kd,
        image_size=args.image_size,
        recipe=_recipe(args),
        val_fraction=args.val_fraction,
        augment=not args.no_augment,
        resume=args.resume,
        rt=rt,
        command=_command(),
    )
    return _finish(rt, best)


def _refit_head(args: argparse.Namespace) -> int:
    from gmvit.train import refit_head

    rt = _runtime(args)
    best = refit_head(
        args.weights,
        args.data,
        args.out,
        recipe=_recipe(args),
        val_fraction=args.val_fraction,
        resume=args.resume,
        rt=rt,
        command=_command(),
    )
    return _finish(rt, best)


def _eval(args: argparse.Namespace) -> int:
    from gmvit.evaluate import evaluate, markdown_table, save_thresholds, write_reports

    if args.batch_size < 1:
        raise CLIError("--batch-size must be at least 1")
    if args.save_thresholds and args.held_out is None:
        raise CLIError("--save-thresholds needs --held-out")
    result = evaluate(
        args.weights,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        threads=args.threads,
        held_out=args.held_out,
        gallery_per_class=args.gallery_per_class,
    )
    paths = write_reports(result, args.json, name=args.name)
    print(markdown_table([(args.name or result.variant, result)]), end="")
    if result.open_set is not None:
        o = result.open_set
        print(
            f"open set: {o['known_accepted']:.3f} of known shapes keep a label, "
            f"{o['unknown_refused']:.3f} of held-out shapes refused; "
            f"AUROC {o['auroc_combined']:.3f} (probability {o['auroc_probability']:.3f}, "
            f"similarity {o['auroc_similarity']:.3f})"
        )
    if args.save_thresholds:
        model_id = save_thresholds(args.weights, result.open_set)
        print(f"thresholds stored in {args.weights} ({model_id})")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
