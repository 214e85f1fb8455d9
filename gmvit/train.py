"""Training GMViT: the teacher in the paper's two stages, and the loop students share.

Stage 1 trains the teacher's CNN alone as a single-view classifier (random horizontal
flip); stage 2 trains the whole network on all views of a shape (each shape turned about +Z
by one of the rig's symmetric angles and mirrored, its views reordered to match their
cameras, and shifted a little). Both use the spec's recipe by default: SGD momentum 0.9,
weight decay 1e-4, lr 0.01 with cosine annealing (T_max 50, floor 0.001), batch 32, 100
epochs.

Beyond the paper, switchable and off by default: the view store's perturbed copies of each
training shape (`gmvit dataset render --augment`; `Recipe.copies` takes fewer), and an
instance-contrastive term on f_global (`Recipe.contrastive`) that keeps shapes apart, not
only classes: batches then hold two renders of each of their shapes, the positives.
On by default, also beyond the paper: after every epoch BatchNorm's running statistics are
recomputed over a few training batches (`Recipe.bn_batches`), so that validation and the
saved checkpoint use statistics of the weights they hold (`recompute_batchnorm`).

Every epoch writes `<stage>-last.pt` (weights, optimiser, scheduler, random states) so
`resume=True` continues an interrupted run where it stopped, and the model with the best
validation accuracy (a stratified hold-out of the training split) is kept as a gmvit
checkpoint. A run is deterministic for a seed on one device. Under `torchrun`
(WORLD_SIZE set) it trains data-parallel, one process per device.

`refit_head` trains a trained network's classifier again on frozen descriptors (the layers
after f_global; the representation and the classifier decoupled, as Kang et al., ICLR 2020,
re-train the classifier): the descriptor, and so every index built with it, stays as it is.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    TensorDataset,
)
from tqdm import tqdm

from gmvit.checkpoint import load_checkpoint, save_checkpoint
from gmvit.data.datasets import (
    MultiViewDataset,
    PairedViewDataset,
    SingleViewDataset,
    ViewSplit,
    augment_shapes,
    augment_views,
    open_split,
    stratified_holdout,
)
from gmvit.errors import GMViTError
from gmvit.model import GMViT, GMViTConfig, GMViTOutput, create_model
from gmvit.preprocess import to_input
from renderer.files import write_atomic


@dataclass
class Recipe:
    """Optimiser and schedule; the defaults are the paper's."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01
    lr_min: float = 0.001
    t_max: int | None = None  # cosine period in epochs; None -> min(50, epochs)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # Ours, not the paper's: weight of the instance-contrastive term on f_global (0 = off)
    # and its temperature; with it on, every batch holds two renders of each of its shapes.
    contrastive: float = 0.0
    temperature: float = 0.1
    copies: int | None = None  # augmented copies per shape taken from the store; None: all
    # Ours: after every epoch, BatchNorm's running statistics are recomputed over this many
    # training batches (0 = keep the momentum averages). Only evaluation uses them, so the
    # learning is unchanged; see `recompute_batchnorm` for why.
    bn_batches: int = 32

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise GMViTError("epochs and batch size must be at least 1")
        if self.contrastive < 0 or self.temperature <= 0:
            raise GMViTError("the contrastive weight must be >= 0 and its temperature > 0")
        if self.copies is not None and self.copies < 0:
            raise GMViTError("the number of copies must be 0 or more")
        if self.bn_batches < 0:
            raise GMViTError("the number of BatchNorm batches must be 0 or more")
        if self.contrastive and self.batch_size < 4:
            raise GMViTError("the contrastive term needs a batch of at least 4 renders")
        if self.t_max is None:
            self.t_max = min(50, self.epochs)


@dataclass
class Runtime:
    """Where and how a run executes: device, seed, data-parallel rank."""

    device: torch.device
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    progress: bool = True
    bf16: bool = False  # forward under bfloat16 autocast (CUDA, or CPUs that have it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def runtime(
    device: str = "auto", seed: int = 0, progress: bool = True, bf16: bool = False
) -> Runtime:
    """The runtime of this process; joins the process group when started by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GMViTError("--device cuda was asked for, but no CUDA device is available")
    if world_size > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        rank = dist.get_rank()
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        return Runtime(torch.device(device), seed, rank, world_size, progress and rank == 0, bf16)
    return Runtime(torch.device(device), seed, 0, 1, progress, bf16)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _sgd(params: list[nn.Parameter], recipe: Recipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )


def _cosine(optimizer: torch.optim.Optimizer, recipe: Recipe):
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=recipe.t_max, eta_min=recipe.lr_min
    )


def _loader(
    dataset: Dataset, batch_size: int, rt: Runtime, *, shuffle: bool, generator: torch.Generator
) -> DataLoader:
    """Batches of `batch_size` renders (of `batch_size // 2` pairs for a paired dataset)."""
    per_item = getattr(dataset, "renders_per_item", 1)
    batch_size = max(1, batch_size // per_item)
    if rt.distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=rt.seed)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = None
    # A last batch of one render would break BatchNorm in the head: drop it then.
    drop_last = per_item * (len(dataset) % (batch_size * rt.world_size)) == 1
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last)


def _reduce(values: Tensor, rt: Runtime) -> Tensor:
    """Sum a small tensor over all ranks."""
    if rt.distributed:
        values = values.clone()
        dist.all_reduce(values)
    return values


@torch.no_grad()
def recompute_batchnorm(module: nn.Module, batches: Iterable[Any], forward: Callable) -> None:
    """Set every BatchNorm's running mean and variance to their plain average over
    `batches` (each run through `forward(batch)` in train mode, without gradients).

    Why: the running averages (momentum 0.1) trail weights that SGD moves fast, and the
    head's BatchNorm1d sees 16 shapes a batch; measured on an 8-epoch GMViT-mini, the
    checkpoint of epoch 8 validated at 0.764 with its running averages and at 0.973 with
    statistics recomputed this way over 30 batches, and validation swung between 0.30 and
    0.92 from epoch to epoch. Batch statistics, which training uses, are untouched."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    module.train()
    try:
        for batch in batches:
            forward(batch)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum


@dataclass
class StageResult:
    best_score: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    *,
    name: str,
    out_dir: Path,
    module: nn.Module,
    recipe: Recipe,
    rt: Runtime,
    train_set: Dataset,
    step: Callable[[nn.Module, Any, torch.Generator], tuple[Tensor, Tensor, Tensor]],
    validate: Callable[[], float],
    on_best: Callable[[float, int], None],
    resume: bool,
) -> StageResult:
    """The epoch loop every stage shares.

    `step(module, batch, generator)` returns (loss, logits, labels) for one batch in train
    mode, running the forward through `module` (data-parallel wrapped when distributed);
    `validate()` returns the validation accuracy in [0, 1] (computed on every rank; the
    same number everywhere); `on_best(score, epoch)` saves the best model (main rank).
    """
    state_path = out_dir / f"{name}-last.pt"
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = _sgd(params, recipe)
    scheduler = _cosine(optimizer, recipe)
    loader_gen = torch.Generator().manual_seed(rt.seed)
    aug_gen = torch.Generator().manual_seed(rt.seed + 1)
    first_epoch, result = 1, StageResult(best_score=-math.inf, best_epoch=0)
    wrapped = module
    if rt.distributed:
        # static_graph: trained on labels alone, mini's attention layer only steers the
        # (non-differentiable) grouping and never gets a gradient, the same every step.
        wrapped = nn.parallel.DistributedDataParallel(
            module,
            device_ids=[rt.device] if rt.device.type == "cuda" else None,
            static_graph=True,
        )
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=rt.device, weights_only=True)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loader_gen.set_state(state["loader_gen"])
        aug_gen.set_state(state["aug_gen"])
        torch.set_rng_state(state["torch_rng"])
        result = StageResult(**state["result"])
        first_epoch = state["epoch"] + 1
    loader = _loader(train_set, recipe.batch_size, rt, shuffle=True, generator=loader_gen)
    started = time.perf_counter() - result.seconds
    for epoch in range(first_epoch, recipe.epochs + 1):
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        module.train()
        totals = torch.zeros(3, dtype=torch.float64, device=rt.device)  # loss sum, right, n
        bar = tqdm(
            loader,
            desc=f"{name} {epoch}/{recipe.epochs}",
            disable=not rt.progress,
            leave=False,
            unit="batch",
        )
        for batch in bar:
            with torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=rt.bf16):
                loss, logits, labels = step(wrapped, batch, aug_gen)
            if not torch.isfinite(loss):
                raise GMViTError(
                    f"{name}: the loss became {loss.item()} at epoch {epoch}; "
                    "lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = labels.shape[0]
            totals += torch.stack(
                [
                    loss.detach().double() * n,
                    (logits.argmax(1) == labels).sum().double(),
                    torch.tensor(float(n), device=rt.device, dtype=torch.float64),
                ]
            )
            bar.set_postfix(
                loss=f"{totals[0].item() / totals[2].item():.3f}",
                acc=f"{totals[1].item() / totals[2].item():.3f}",
            )
        scheduler.step()
        totals = _reduce(totals, rt)
        if recipe.bn_batches:
            order = torch.Generator().manual_seed(rt.seed + 2 + epoch)
            recompute_batchnorm(
                module,
                itertools.islice(
                    _loader(train_set, recipe.batch_size, rt, shuffle=True, generator=order),
                    recipe.bn_batches,
                ),
                lambda batch, order=order: step(module, batch, order),
            )
        score = validate()
        row = {
            "epoch": epoch,
            "loss": totals[0].item() / totals[2].item(),
            "train_acc": totals[1].item() / totals[2].item(),
            "val_acc": score,
            "lr": optimizer.param_groups[0]["lr"],
        }
        result.history.append(row)
        if score > result.best_score:
            result.best_score, result.best_epoch = score, epoch
            if rt.is_main:
                on_best(score, epoch)
        result.seconds = time.perf_counter() - started
        if rt.is_main:
            tqdm.write(
                f"{name} epoch {epoch}/{recipe.epochs}: loss {row['loss']:.4f} "
                f"train acc {row['train_acc']:.4f} val acc {score:.4f}"
            )
            _atomic_save(
                {
                    "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "loader_gen": loader_gen.get_state(),
                    "aug_gen": aug_gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "result": asdict(result),
                },
                state_path,
            )
        if rt.distributed:
            dist.barrier()
    del wrapped
    return result


def _atomic_save(obj: Any, path: Path) -> None:
    write_atomic(path, lambda out: torch.save(obj, out))


@torch.no_grad()
def forward_rows(
    model: nn.Module,
    split: ViewSplit,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int = 32,
) -> Iterable[GMViTOutput]:
    """The model's outputs (in eval mode) for the given renders, `batch_size` at a time."""
    config = _unwrap(model).config
    model.eval()
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        views = torch.from_numpy(np.stack([split.load(int(i)) for i in chunk]))
        yield model(to_input(views, config).to(device))


def predict(
    model: nn.Module,
    split: ViewSplit,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int = 32,
) -> np.ndarray:
    """Predicted labels of the given shapes (model in eval mode)."""
    predictions = [
        out.logits.argmax(1).cpu().numpy()
        for out in forward_rows(model, split, indices, device, batch_size)
    ]
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def accuracy(
    model: nn.Module, split: ViewSplit, indices: np.ndarray, device: torch.device
) -> float:
    if len(indices) == 0:
        return 0.0
    predicted = predict(model, split, indices, device)
    return float((predicted == split.labels[indices]).mean())


class SingleViewClassifier(nn.Module):
    """Stage 1: the teacher's CNN with a temporary linear classifier on its 512-d token."""

    def __init__(self, model: GMViT, num_classes: int) -> None:
        super().__init__()
        self.encoder = model.encoder_net_1
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.encoder(x).flatten(1))


@dataclass
class TrainData:
    """A training split cut into train and validation shapes: all renders of a shape fall on
    one side; validation keeps only each shape's render as it is (copy 0)."""

    split: ViewSplit
    train_idx: np.ndarray
    val_idx: np.ndarray

    @classmethod
    def open(
        cls, path: str | Path, *, val_fraction: float, seed: int, num_views: int | None = None
    ) -> TrainData:
        split = open_split(path, "train", num_views)
        if len(split) == 0:
            raise GMViTError(f"{path} has no usable training shapes")
        return cls.from_split(split, val_fraction=val_fraction, seed=seed)

    @classmethod
    def from_split(cls, split: ViewSplit, *, val_fraction: float, seed: int) -> TrainData:
        if not 0.0 <= val_fraction < 1.0:
            raise GMViTError(f"the validation fraction must be in [0, 1), not {val_fraction}")
        shapes, first = np.unique(split.shape_ids, return_index=True)
        train_shapes, val_shapes = stratified_holdout(split.labels[first], val_fraction, seed)
        in_train = np.isin(split.shape_ids, shapes[train_shapes])
        in_val = np.isin(split.shape_ids, shapes[val_shapes]) & (split.copies == 0)
        return cls(split, np.flatnonzero(in_train), np.flatnonzero(in_val))

    @property
    def val_or_train(self) -> np.ndarray:
        """Validation shapes, or the training shapes when nothing is held out."""
        return self.val_idx if len(self.val_idx) else self.train_idx

    def describe(self) -> dict[str, Any]:
        return {
            "classes": self.split.classes,
            "rig": self.split.rig,
            "num_views": self.split.num_views,
            "size": self.split.size,
            "train_shapes": len(np.unique(self.split.shape_ids[self.train_idx])),
            "train_renders": len(self.train_idx),
            "val_shapes": len(self.val_idx),
        }

    def train_rows(self, recipe: Recipe) -> np.ndarray:
        """The training renders a recipe uses: each shape with at most `recipe.copies` of its
        perturbed copies."""
        if recipe.copies is None:
            return self.train_idx
        return self.train_idx[self.split.copies[self.train_idx] <= recipe.copies]

    def train_set(self, recipe: Recipe, seed: int) -> Dataset:
        """Every training render once per epoch; in pairs of one shape when the recipe has
        the contrastive term."""
        if recipe.contrastive > 0:
            return PairedViewDataset(self.split, self.train_rows(recipe), seed)
        return MultiViewDataset(self.split, self.train_rows(recipe))


def instance_contrastive_loss(features: Tensor, shapes: Tensor, temperature: float) -> Tensor:
    """Supervised-contrastive (NT-Xent when each render has one partner) loss over a batch:
    every render should be nearer, by cosine similarity, to the other renders of its own
    shape than to any render of another shape, whatever their classes. features (N, D),
    shapes (N,) shape ids; renders without a partner in the batch are left out."""
    z = F.normalize(features.float(), dim=1)
    logits = (z @ z.T) / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positive = (shapes[:, None] == shapes[None, :]) & ~self_mask
    anchors = positive.any(dim=1)
    if not anchors.any():
        return features.new_zeros(())
    log_prob = logits.log_softmax(dim=1).masked_fill(~positive, 0.0)
    per_anchor = -log_prob.sum(dim=1)[anchors] / positive.sum(dim=1)[anchors]
    return per_anchor.mean()


def unpack(batch: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor | None]:
    """(views (N, V, H, W, 3), labels (N,), shape ids (N,) or None) of a batch of a
    `MultiViewDataset` or of a `PairedViewDataset` (its pairs flattened)."""
    if len(batch) == 2:
        views, labels = batch
        return views, labels, None
    views, labels, shapes = batch
    per_item = views.shape[1]
    return (
        views.flatten(0, 1),
        labels.repeat_interleave(per_item),
        shapes.repeat_interleave(per_item),
    )


def multiview_step(
    data: TrainData, config: GMViTConfig, rt: Runtime, augment: bool, recipe: Recipe | None = None
) -> Callable:
    """A training step: cross-entropy on the logits (the paper's loss), plus the recipe's
    instance-contrastive term on f_global when it has one."""
    weight = recipe.contrastive if recipe else 0.0
    temperature = recipe.temperature if recipe else 0.1

    def step(module: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator):
        views, labels, shapes = unpack(batch)
        x = to_input(views, config)
        if augment:
            x = augment_shapes(x, data.split.rig, generator)
        labels = labels.to(rt.device)
        out = module(x.to(rt.device))
        loss = F.cross_entropy(out.logits, labels)
        if weight and shapes is not None:
            shapes = shapes.to(rt.device)
            loss = loss + weight * instance_contrastive_loss(out.f_global, shapes, temperature)
        return loss, out.logits, labels

    return step


@dataclass
class _Run:
    """What both training entry points set up the same way before their stages."""

    rt: Runtime
    out: Path
    data: TrainData
    image_size: int
    data_path: str | Path
    command: str | None
    augment: bool

    @classmethod
    def start(
        cls,
        data_path: str | Path,
        out_dir: str | Path,
        *,
        val_fraction: float,
        image_size: int | None,
        augment: bool,
        rt: Runtime | None,
        command: str | None,
    ) -> _Run:
        rt = rt or runtime()
        seed_everything(rt.seed)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        data = TrainData.open(data_path, val_fraction=val_fraction, seed=rt.seed)
        return cls(rt, out, data, image_size or data.split.size, data_path, command, augment)

    def model(self, variant: str, **config: Any) -> nn.Module:
        split = self.data.split
        model = create_model(
            variant,
            split.num_views,
            len(split.classes),
            image_size=self.image_size,
            rig=split.rig,
            **config,
        ).to(self.rt.device)
        if self.rt.distributed and self.rt.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def meta(self, trained_by: str) -> dict[str, Any]:
        return {
            "trained_by": trained_by,
            "command": self.command,
            "seed": self.rt.seed,
            "data": self.data.describe() | {"path": str(self.data_path)},
            "image_size": self.image_size,
            "rig": self.data.split.rig,
            "augment": self.augment,
        }

    def fit_views(
        self,
        name: str,
        model: nn.Module,
        recipe: Recipe,
        step: Callable,
        meta: dict[str, Any],
        resume: bool,
    ) -> tuple[StageResult, Path]:
        """Train `model` on whole shapes, keeping the best validation epoch as `best.pt`."""
        best = self.out / "best.pt"
        classes = self.data.split.classes

        def save_best(score: float, epoch: int) -> None:
            meta_now = meta | {"val_acc": score, "epoch": epoch}
            save_checkpoint(best, _unwrap(model), classes, meta_now)

        result = fit(
            name=name,
            out_dir=self.out,
            module=model,
            recipe=recipe,
            rt=self.rt,
            train_set=self.data.train_set(recipe, self.rt.seed),
            step=step,
            validate=lambda: accuracy(
                model, self.data.split, self.data.val_or_train, self.rt.device
            ),
            on_best=save_best,
            resume=resume,
        )
        return result, best


def train_teacher(
    data_path: str | Path,
    out_dir: str | Path,
    *,
    image_size: int | None = None,
    cnn_recipe: Recipe | None = None,
    recipe: Recipe | None = None,
    val_fraction: float = 0.1,
    augment: bool = True,
    cnn: str = "resnet18",
    resume: bool = False,
    rt: Runtime | None = None,
    command: str | None = None,
) -> Path:
    """Both stages of the teacher; returns the path of the best checkpoint (`best.pt`)."""
    run = _Run.start(
        data_path,
        out_dir,
        val_fraction=val_fraction,
        image_size=image_size,
        augment=augment,
        rt=rt,
        command=command,
    )
    rt, data = run.rt, run.data
    cnn_recipe = cnn_recipe or Recipe(batch_size=64)
    recipe = recipe or Recipe()
    num_classes = len(data.split.classes)
    model = run.model("teacher", cnn=cnn)

    # Stage 1: the CNN as a single-view classifier.
    single = SingleViewClassifier(model, num_classes).to(rt.device)
    cnn_best = run.out / "cnn-best.pt"
    num_views = data.split.num_views

    def cnn_step(module: nn.Module, batch: tuple[Tensor, Tensor], generator: torch.Generator):
        views, labels = batch
        x = augment_views(to_input(views, model.config), generator).to(rt.device)
        labels = labels.to(rt.device)
        logits = module(x)
        return F.cross_entropy(logits, labels), logits, labels

    @torch.no_grad()
    def cnn_validate() -> float:
        single.eval()
        idx = data.val_or_train
        right = 0
        for start in range(0, len(idx), 16):
            chunk = idx[start : start + 16]
            views = torch.from_numpy(np.stack([data.split.load(int(i)) for i in chunk]))
            logits = single(to_input(views.flatten(0, 1), model.config).to(rt.device))
            labels = torch.from_numpy(data.split.labels[chunk]).repeat_interleave(num_views)
            right += int((logits.argmax(1).cpu() == labels).sum())
        return right / (len(idx) * num_views)

    stage1 = fit(
        name="cnn",
        out_dir=run.out,
        module=single,
        recipe=cnn_recipe,
        rt=rt,
        train_set=SingleViewDataset(data.split, data.train_rows(cnn_recipe)),
        step=cnn_step,
        validate=cnn_validate,
        on_best=lambda s, e: _atomic_save(single.state_dict(), cnn_best),
        resume=resume,
    )
    single.load_state_dict(torch.load(cnn_best, map_location=rt.device, weights_only=True))

    # Stage 2: the whole network, starting from the best single-view CNN.
    meta = run.meta("gmvit train") | {
        "cnn_init": "random (no ImageNet weights offline)",
        "cnn_recipe": asdict(cnn_recipe),
        "recipe": asdict(recipe),
        "cnn_stage": {
            "best_val_acc_single_view": stage1.best_score,
            "best_epoch": stage1.best_epoch,
        },
    }
    step = multiview_step(data, model.config, rt, augment, recipe)
    stage2, best = run.fit_views("gmvit", model, recipe, step, meta, resume)
    if rt.is_main:
        _write_history(run.out / "history.json", {"cnn": asdict(stage1), "gmvit": asdict(stage2)})
    return best


def train_student(
    data_path: str | Path,
    out_dir: str | Path,
    *,
    variant: str,
    image_size: int | None = None,
    recipe: Recipe | None = None,
    val_fraction: float = 0.1,
    augment: bool = True,
    step_factory: Callable[[GMViT, TrainData, Runtime], Callable] | None = None,
    extra_meta: dict[str, Any] | None = None,
    student_config: dict[str, Any] | None = None,
    resume: bool = False,
    rt: Runtime | None = None,
    command: str | None = None,
) -> Path:
    """Train a student (or any variant) end to end in one stage. `step_factory` gives the
    loss (distillation); by default plain cross-entropy on the labels."""
    run = _Run.start(
        data_path,
        out_dir,
        val_fraction=val_fraction,
        image_size=image_size,
        augment=augment,
        rt=rt,
        command=command,
    )
    recipe = recipe or Recipe(batch_size=16)
    model = run.model(variant, **(student_config or {}))
    if step_factory is None:
        step = multiview_step(run.data, model.config, run.rt, augment, recipe)
    else:
        step = step_factory(model, run.data, run.rt)
    trained_by = "gmvit distill" if extra_meta else "gmvit train"
    meta = run.meta(trained_by) | {"recipe": asdict(recipe)} | (extra_meta or {})
    result, best = run.fit_views(variant, model, recipe, step, meta, resume)
    if run.rt.is_main:
        _write_history(run.out / "history.json", {variant: asdict(result)})
    return best


def refit_head(
    weights: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    recipe: Recipe | None = None,
    val_fraction: float = 0.1,
    resume: bool = False,
    rt: Runtime | None = None,
    command: str | None = None,
) -> Path:
    """Train the classifier of a trained network again, on its frozen descriptors.

    Every training render (perturbed copies included) goes through the network once, in
    eval mode, to its f_global; then the layers after f_global (`cls_head_finetune[2:]`)
    start from where they are and are trained on those vectors with cross-entropy, the
    best validation epoch kept. Everything up to f_global keeps its weights, so the new
    checkpoint's descriptors are the old one's, bit for bit, and an index keeps its meaning.
    Why: an end-to-end run fits its head to features that move under it; refitted on the
    features inference sees, on data whose classes are drawn as wanted, the head names real
    furniture far better (docs/descriptor.md, "The classifier refitted"). The open-set
    thresholds are dropped: they were calibrated on the old head's probabilities (`gmvit eval
    --save-thresholds` calibrates them again)."""
    rt = rt or runtime()
    if rt.distributed:
        raise GMViTError("refitting a head runs in one process; start it without torchrun")
    source = load_checkpoint(weights)
    run = _Run.start(
        data_path,
        out_dir,
        val_fraction=val_fraction,
        image_size=source.config.image_size,
        augment=False,
        rt=rt,
        command=command,
    )
    split, config = run.data.split, source.config
    if list(split.classes) != list(source.class_names):
        raise GMViTError(
            f"{data_path} has the classes {split.classes}, {weights} was trained on "
            f"{source.class_names}"
        )
    if (split.rig, split.num_views) != (config.rig, config.num_views):
        raise GMViTError(
            f"{data_path} holds {split.num_views} views of the {split.rig} rig; {weights} "
            f"takes {config.num_views} of {config.rig}"
        )
    recipe = recipe or Recipe(epochs=10)
    model = source.model.to(rt.device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    head = model.cls_head_finetune[2:]
    for parameter in head.parameters():
        parameter.requires_grad_(True)

    def descriptors(rows: np.ndarray, desc: str) -> TensorDataset:
        outputs = forward_rows(model, split, rows, rt.device)
        f_global = [
            out.f_global.float()
            for out in tqdm(outputs, desc=desc, total=math.ceil(len(rows) / 32), leave=False)
        ]
        return TensorDataset(torch.cat(f_global), torch.from_numpy(split.labels[rows]))

    train_set = descriptors(run.data.train_rows(recipe), "descriptors (train)")
    val_set = descriptors(run.data.val_or_train, "descriptors (validation)")

    def step(module: nn.Module, batch: tuple[Tensor, Tensor], generator: torch.Generator):
        features, labels = (t.to(rt.device) for t in batch)
        logits = module(features)
        return F.cross_entropy(logits, labels), logits, labels

    @torch.no_grad()
    def validate() -> float:
        head.eval()
        features, labels = (t.to(rt.device) for t in val_set.tensors)
        return float((head(features).argmax(1) == labels).float().mean())

    best = run.out / "best.pt"
    kept = {k: v for k, v in source.meta.items() if k not in ("open_set", "descriptor_version")}
    meta = kept | {
        "head_refit": run.meta("gmvit refit-head")
        | {"from_model_id": source.model_id, "recipe": asdict(recipe)}
    }

    def save_best(score: float, epoch: int) -> None:
        meta["head_refit"] |= {"val_acc": score, "epoch": epoch}
        save_checkpoint(best, model, source.class_names, meta)

    result = fit(
        name="head",
        out_dir=run.out,
        module=head,
        recipe=recipe,
        rt=rt,
        train_set=train_set,
        step=step,
        validate=validate,
        on_best=save_best,
        resume=resume,
    )
    _write_history(run.out / "history.json", {"head": asdict(result)})
    return best


def _unwrap(model: nn.Module) -> GMViT:
    return model.module if hasattr(model, "module") else model


def _write_history(path: Path, history: dict) -> None:
    path.write_text(json.dumps(history, indent=1) + "\n")
