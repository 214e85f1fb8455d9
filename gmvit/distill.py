"""Distilling a GMViT student from a frozen teacher, with the paper's loss.

    loss = MSE(f_cnn) + MSE(f_vit1) + MSE(att) + MSE(f_vit2) + MSE(f_global)
           + 0.7 * KL(softmax(teacher / 5) || softmax(student / 5))   (batch mean, no T^2)
           + 0.3 * CrossEntropy(student, label)

`no_kd=True` trains the same student on the labels alone (plain cross-entropy), the
ablation the paper's claim is measured against. A recipe with a contrastive weight adds the
student's own instance-contrastive term on f_global to either (`gmvit.train`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmvit.checkpoint import load_checkpoint
from gmvit.data.datasets import augment_shapes
from gmvit.errors import GMViTError
from gmvit.model import GMViTOutput
from gmvit.preprocess import to_input
from gmvit.train import (
    Recipe,
    Runtime,
    TrainData,
    instance_contrastive_loss,
    runtime,
    train_student,
    unpack,
)

FEATURES = ("f_cnn", "f_vit1", "att", "f_vit2", "f_global")
TEMPERATURE = 5.0
KD_WEIGHT = 0.7
CE_WEIGHT = 0.3
STUDENTS = ("simple", "mini")


def distillation_loss(
    student: GMViTOutput, teacher: GMViTOutput, labels: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """The spec's loss and its parts (for logs)."""
    parts = {name: F.mse_loss(getattr(student, name), getattr(teacher, name)) for name in FEATURES}
    parts["kl"] = F.kl_div(
        F.log_softmax(student.logits / TEMPERATURE, dim=1),
        F.softmax(teacher.logits / TEMPERATURE, dim=1),
        reduction="batchmean",
    )
    parts["ce"] = F.cross_entropy(student.logits, labels)
    total = (
        sum(parts[name] for name in FEATURES) + KD_WEIGHT * parts["kl"] + CE_WEIGHT * parts["ce"]
    )
    return total, {name: float(value.detach()) for name, value in parts.items()}


def _distill_step(teacher: nn.Module, augment: bool, recipe: Recipe) -> Callable:
    def factory(model, data: TrainData, rt: Runtime) -> Callable:
        def step(module: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator):
            views, labels, shapes = unpack(batch)
            x = to_input(views, model.config)
            if augment:
                x = augment_shapes(x, data.split.rig, generator)
            x, labels = x.to(rt.device), labels.to(rt.device)
            with torch.no_grad():
                target = teacher(x)
            out = module(x)
            loss, _ = distillation_loss(out, target, labels)
            if recipe.contrastive and shapes is not None:
                # The student's own instance term, beside what it inherits from the teacher.
                shapes = shapes.to(rt.device)
                loss = loss + recipe.contrastive * instance_contrastive_loss(
                    out.f_global, shapes, recipe.temperature
                )
            return loss, out.logits, labels

        return step

    return factory


def distill(
    data_path: str | Path,
    out_dir: str | Path,
    *,
    student: str,
    teacher_path: str | Path | None,
    no_kd: bool = False,
    image_size: int | None = None,
    recipe: Recipe | None = None,
    val_fraction: float = 0.1,
    augment: bool = True,
    resume: bool = False,
    rt: Runtime | None = None,
    command: str | None = None,
) -> Path:
    """Train `student` ("simple" or "mini") by distillation from the teacher checkpoint,
    or on labels alone with `no_kd`; returns the best checkpoint's path."""
    if student not in STUDENTS:
        raise GMViTError(f"unknown student {student!r}; choose one of {STUDENTS}")
    rt = rt or runtime()
    recipe = recipe or Recipe(batch_size=16)
    if no_kd:
        meta = {"distillation": None, "teacher": None}
        if teacher_path is not None:
            meta["teacher_ignored"] = str(teacher_path)
        return train_student(
            data_path,
            out_dir,
            variant=student,
            image_size=image_size,
            recipe=recipe,
            val_fraction=val_fraction,
            augment=augment,
            extra_meta=meta | {"no_kd": True},
            resume=resume,
            rt=rt,
            command=command,
        )
    if teacher_path is None:
        raise GMViTError("distillation needs --teacher (or --no-kd to train on labels alone)")
    teacher = load_checkpoint(teacher_path)
    config = teacher.config
    data = TrainData.open(data_path, val_fraction=val_fraction, seed=rt.seed)
    if data.split.classes != teacher.class_names:
        raise GMViTError(
            f"the teacher knows classes {teacher.class_names}, the data has {data.split.classes}"
        )
    if data.split.rig != config.rig:
        raise GMViTError(
            f"the teacher was trained on rig {config.rig}, the data is {data.split.rig}"
        )
    if image_size not in (None, config.image_size):
        raise GMViTError(
            f"a student learns from the teacher at its image size {config.image_size}, "
            f"not {image_size}"
        )
    teacher_model = teacher.model.to(rt.device).eval()
    for p in teacher_model.parameters():
        p.requires_grad_(False)
    meta = {
        "no_kd": False,
        "teacher": {"model_id": teacher.model_id, "path": str(teacher_path)},
        "distillation": {
            "features": list(FEATURES),
            "temperature": TEMPERATURE,
            "kd_weight": KD_WEIGHT,
            "ce_weight": CE_WEIGHT,
        },
    }
    return train_student(
        data_path,
        out_dir,
        variant=student,
        image_size=config.image_size,
        recipe=recipe,
        val_fraction=val_fraction,
        augment=augment,
        step_factory=_distill_step(teacher_model, augment, recipe),
        extra_meta=meta,
        # The teacher's preprocessing: both see the same input.
        student_config={"group_bins": config.group_bins, "mean": config.mean, "std": config.std},
        resume=resume,
        rt=rt,
        command=command,
    )
