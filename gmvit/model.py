"""GMViT: the teacher and its two students, one model family chosen by `GMViTConfig`.

The networks are those of GMVIT_SPEC.md. Module names equal the state_dict key names of the
published code (`encoder_net_1`, `blocks_1.blocks.<k>.attn.qkv`, `cls_head_finetune.<i>`,
...), so loading a published checkpoint is a matter of stripping a `module.` prefix and
dropping the teacher's unused `encoder_net_2` (see `gmvit.reference`).

Grouping is batched: every shape gets `group_bins` group slots, the empty ones are padded and
masked (attention key mask, max over real groups only), so a batch computes what each shape
computes alone, without a Python loop over shapes or groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmvit.errors import GMViTError
from gmvit.preprocess import IMAGENET_MEAN, IMAGENET_STD
from gmvit.resnet import resnet, resnet_trunk
from renderer.rigs import RIG_FOR_VIEWS, get_rig

VARIANTS = ("teacher", "simple", "mini")
# What `GMViTOutput.descriptor` means, as part of every model id: vectors of two definitions
# never share an index, even under the same weights.
#   1: F.normalize(relu(f_global)), a head whose in-place ReLU rewrote f_global (a bug)
#   2: F.normalize(f_global), f_global before any ReLU, as the published code returns it
#   3: 2, of views lit on both sides of every face (renderer.render): the same weights give
#      other vectors for open, single-sided or inconsistently wound meshes
DESCRIPTOR_VERSION = 3
TEACHER_CNNS = ("resnet18", "resnet34")
WIDTH = 512
NUM_HEADS = 8
# (depth, MLP ratio) of both ViTs.
_VIT_SHAPE = {"teacher": (6, 4.0), "simple": (1, 1.0)}


@dataclass(frozen=True)
class GMViTConfig:
    variant: str  # "teacher" | "simple" | "mini"
    num_views: int = 12  # 12 | 20
    num_classes: int = 40
    group_bins: int = 12
    cnn: str = "resnet18"  # teacher only: "resnet18" | "resnet34"
    image_size: int = 224  # what the model was trained on; the Embedder expects this size
    rig: str | None = None  # defaults to RIG_FOR_VIEWS[num_views]
    drop_path: float = 0.1
    # Input normalisation per RGB channel (gmvit.preprocess.to_input).
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise GMViTError(f"unknown GMViT variant {self.variant!r}; choose one of {VARIANTS}")
        if self.num_views not in RIG_FOR_VIEWS:
            raise GMViTError(
                f"GMViT takes {sorted(RIG_FOR_VIEWS)} views per shape, not {self.num_views}"
            )
        rig = RIG_FOR_VIEWS[self.num_views] if self.rig is None else self.rig
        try:
            rig_views = get_rig(rig).num_views
        except ValueError as exc:
            raise GMViTError(str(exc)) from None
        if rig_views != self.num_views:
            raise GMViTError(f"camera rig {rig!r} has {rig_views} views, not {self.num_views}")
        object.__setattr__(self, "rig", rig)
        if self.cnn not in TEACHER_CNNS:
            raise GMViTError(f"unknown teacher CNN {self.cnn!r}; choose one of {TEACHER_CNNS}")
        for name in ("num_classes", "group_bins", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GMViTError(f"{name} must be a positive integer, not {value!r}")
        if not 0.0 <= self.drop_path < 1.0:
            raise GMViTError(f"drop_path must be in [0, 1), not {self.drop_path!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            try:
                channels = tuple(float(c) for c in value)
            except (TypeError, ValueError):
                channels = ()
            if len(channels) != 3 or (name == "std" and min(channels) <= 0):
                raise GMViTError(f"{name} must be three numbers (RGB), std above 0: {value!r}")
            object.__setattr__(self, name, channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GMViTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GMViTError(f"unknown GMViT config fields: {', '.join(unknown)}")
        if "variant" not in data:
            raise GMViTError("a GMViT config needs a 'variant'")
        return cls(**data)


@dataclass
class GMViTOutput:
    f_cnn: Tensor  # (B*V, 512) one CNN token per view
    f_vit1: Tensor  # (B*V, 512) view-level features
    att: Tensor  # (B, V) view scores in (0, 1)
    f_vit2: Tensor  # (B, 512) group-level feature
    f_global: Tensor  # (B, 512) first Linear+BatchNorm of the head
    logits: Tensor  # (B, C)
    descriptor: Tensor  # (B, 512) F.normalize(f_global): what the index stores

    @classmethod
    def from_stages(
        cls, f_cnn: Tensor, f_vit1: Tensor, att: Tensor, f_vit2: Tensor, f_global: Tensor,
        logits: Tensor,
    ) -> GMViTOutput:  # fmt: skip
        """The outputs with f_vit1 flattened to one row per view and the descriptor derived."""
        return cls(
            f_cnn=f_cnn,
            f_vit1=f_vit1.reshape(-1, WIDTH),
            att=att,
            f_vit2=f_vit2,
            f_global=f_global,
            logits=logits,
            descriptor=F.normalize(f_global, dim=-1),
        )


@dataclass
class ViewGroups:
    features: Tensor  # (B, G, D), G = group_bins; padded slots are 0
    positions: Tensor | None  # (B, G, 3) mean camera position per group; padded slots 0
    mask: Tensor  # (B, G) bool, True for a real group; real groups come first


def bin_edges(group_bins: int, like: Tensor) -> Tensor:
    """Left edges i * (1 / G) of the score bins and the final right edge, in `like`'s dtype.

    Computed as the published code does (a double `i * interval` compared with the score
    tensor, i.e. rounded to its dtype), so a score on an edge falls in the same bin.
    """
    interval = 1.0 / group_bins
    edges = [i * interval for i in range(group_bins + 1)]
    return torch.tensor(edges, dtype=like.dtype, device=like.device)


def group_views(
    features: Tensor, scores: Tensor, group_bins: int, positions: Tensor | None = None
) -> ViewGroups:
    """Group the views of each shape by score bin; all shapes at once.

    features (B, V, D), scores (B, V), positions (V, 3) or None. Bin g holds the views with
    g/G <= score < (g+1)/G; a group is the element-wise max of its views' features and the
    mean of their positions. Empty bins are dropped and groups keep ascending bin order, so
    slot s of a shape holds its s-th non-empty bin. A score outside [0, 1) is in no bin and
    its view in no group, as in the published code.
    """
    edges = bin_edges(group_bins, scores)
    in_bin = (scores.unsqueeze(-1) >= edges[:-1]) & (scores.unsqueeze(-1) < edges[1:])  # B,V,G
    occupied = in_bin.any(dim=1)  # (B, G)
    slot_of_bin = occupied.cumsum(dim=1) - 1  # rank of each bin among the non-empty ones
    view_slot = torch.where(
        in_bin.any(dim=-1),
        slot_of_bin.gather(1, in_bin.to(torch.uint8).argmax(dim=-1)),
        -1,
    )  # (B, V), -1 for a view in no bin
    slots = torch.arange(group_bins, device=scores.device)
    member = view_slot.unsqueeze(1) == slots.view(1, -1, 1)  # (B, G, V)
    mask = slots.unsqueeze(0) < occupied.sum(dim=1, keepdim=True)  # (B, G)

    grouped = features.unsqueeze(1).masked_fill(~member.unsqueeze(-1), float("-inf")).amax(2)
    grouped = torch.where(mask.unsqueeze(-1), grouped, torch.zeros((), dtype=features.dtype))
    group_positions = None
    if positions is not None:
        weights = member.to(positions.dtype)
        counts = weights.sum(dim=-1, keepdim=True).clamp(min=1.0)
        group_positions = (weights @ positions) / counts
    return ViewGroups(grouped, group_positions, mask)


def masked_max(tokens: Tensor, mask: Tensor) -> Tensor:
    """Max over the real tokens (B, N, D) -> (B, D); a shape with none gets zeros.

    The published code crashes on a shape with no group (every score >= 1.0, a saturated
    sigmoid); zeros keep such a shape answerable.
    """
    best = tokens.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros((), dtype=tokens.dtype))


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: drop the residual branch per sample, rescale the kept ones."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep).div_(keep)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """x (B, N, C); key_mask (B, N) bool, False for padding no query may attend to."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: LN -> attention -> residual, LN -> MLP -> residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + drop_path(self.attn(self.norm1(x), key_mask), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class TransformerEncoder(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, r) for r in rates)

    def forward(self, x: Tensor, pos: Tensor, key_mask: Tensor | None = None) -> Tensor:
        # The position sequence enters every block, not only the first.
        for block in self.blocks:
            x = block(x + pos, key_mask)
        return x


class StudentCNN(nn.Module):
    """Both students' CNN: 7x7/2 conv + maxpool, three 3x3/2 conv stages, average pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 256, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(256)
        self.conv4 = nn.Conv2d(256, 512, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(512)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.relu(self.bn4(self.conv4(x)))
        return self.avgpool(x)


def _head(in_features: int, num_classes: int) -> nn.Sequential:
    # Not in place: the output of the first Linear + BatchNorm is f_global, the descriptor,
    # and must keep its negative entries (an in-place ReLU would rewrite it under the caller).
    return nn.Sequential(
        nn.Linear(in_features, 512),
        nn.BatchNorm1d(512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, num_classes),
    )


def _position_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, WIDTH))


class GMViT(nn.Module):
    """GMViT teacher, GMViT-simple or GMViT-mini, as `config.variant` says.

    forward takes normalised views (B, V, 3, H, W) and returns all six outputs of the spec.
    The teacher does not keep the published code's unused `encoder_net_2` (the single-view
    classifier's fc): it never takes part in forward; `gmvit.load_reference` drops it.
    """

    def __init__(self, config: GMViTConfig) -> None:
        super().__init__()
        self.config = config
        if config.variant == "teacher":
            self.encoder_net_1: nn.Module = resnet_trunk(resnet(config.cnn))
        else:
            self.encoder_net_1 = StudentCNN()

        if config.variant == "mini":
            self.mlp1 = nn.Linear(WIDTH, WIDTH)
            self.attention: nn.Module = nn.Linear(WIDTH, 1)
            self.mlp2 = nn.Linear(WIDTH, WIDTH)
            self.norm = nn.LayerNorm(WIDTH)
            self.cls_head_finetune = _head(WIDTH, config.num_classes)
            return

        depth, mlp_ratio = _VIT_SHAPE[config.variant]
        positions = torch.tensor(get_rig(config.rig).positions, dtype=torch.float32)
        # Fixed by the rig, not learned: kept out of the state_dict.
        self.register_buffer("positions", positions, persistent=False)
        self.cls_token_1 = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.cls_pos_1 = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.cls_token_2 = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.cls_pos_2 = nn.Parameter(torch.zeros(1, 1, WIDTH))
        for token in (self.cls_token_1, self.cls_pos_1, self.cls_token_2, self.cls_pos_2):
            nn.init.trunc_normal_(token, std=0.02)
        self.pos_embed_1 = _position_mlp()
        self.pos_embed_2 = _position_mlp()
        self.blocks_1 = TransformerEncoder(WIDTH, depth, NUM_HEADS, mlp_ratio, config.drop_path)
        self.blocks_2 = TransformerEncoder(WIDTH, depth, NUM_HEADS, mlp_ratio, config.drop_path)
        self.norm = nn.LayerNorm(WIDTH)
        self.cls_head_finetune = _head(2 * WIDTH, config.num_classes)
        self.attention = nn.Sequential(nn.Linear(WIDTH, 1))

    def check_views(self, views: Tensor) -> None:
        """Raise GMViTError unless `views` is (B, V, 3, H, W) with this model's V."""
        if views.ndim != 5 or views.shape[1] != self.config.num_views or views.shape[2] != 3:
            raise GMViTError(
                f"expected views of shape (B, {self.config.num_views}, 3, H, W), "
                f"got {tuple(views.shape)}"
            )
        if views.shape[0] == 0:
            raise GMViTError("expected at least one shape, got an empty batch")

    def cnn_tokens(self, views: Tensor) -> Tensor:
        """(B, V, 3, H, W) -> f_cnn (B*V, 512), the views of one shape contiguous.

        The images go in channels-last: the convolutions then take oneDNN's (and cuDNN's)
        NHWC kernels, 1.3x (ResNet-18) to 1.7x (the students' CNN) faster on a CPU than
        NCHW, the same numbers to float rounding (the weights keep their layout).
        """
        images = views.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        return self.encoder_net_1(images).flatten(1)

    def view_features(self, f_cnn: Tensor) -> Tensor:
        """f_cnn (B*V, 512) -> normalised view-level features (B, V, 512); not for mini."""
        tokens = f_cnn.view(-1, self.config.num_views, WIDTH)
        b = tokens.shape[0]
        pos = self.pos_embed_1(self.positions).expand(b, -1, -1)
        x = torch.cat([self.cls_token_1.expand(b, -1, -1), tokens], dim=1)
        pos = torch.cat([self.cls_pos_1.expand(b, -1, -1), pos], dim=1)
        return self.norm(self.blocks_1(x, pos))[:, 1:]

    def view_scores(self, f_vit1: Tensor) -> Tensor:
        """(B, V, 512) -> att (B, V), in float32 whatever the autocast: in bfloat16 a
        sigmoid above about 0.998 rounds to 1.0, and a score of 1.0 puts its view in no
        group (all of a shape's views, and its f_vit2 is zero)."""
        return torch.sigmoid(self.attention(f_vit1).float()).squeeze(-1)

    def group_features(self, groups: ViewGroups) -> tuple[Tensor, Tensor]:
        """Grouped views -> (cls_2 output (B, 512), f_vit2 (B, 512)); not for mini."""
        b = groups.features.shape[0]
        x = torch.cat([self.cls_token_2.expand(b, -1, -1), groups.features], dim=1)
        pos = torch.cat([self.cls_pos_2.expand(b, -1, -1), self.pos_embed_2(groups.positions)], 1)
        key_mask = torch.cat([groups.mask.new_ones(b, 1), groups.mask], dim=1)
        y = self.norm(self.blocks_2(x, pos, key_mask))
        return y[:, 0], masked_max(y[:, 1:], groups.mask)

    def head(self, feature: Tensor) -> tuple[Tensor, Tensor]:
        """Global feature -> (f_global, logits)."""
        f_global = self.cls_head_finetune[:2](feature)
        return f_global, self.cls_head_finetune[2:](f_global)

    def forward(self, views: Tensor) -> GMViTOutput:
        self.check_views(views)
        b, v = views.shape[:2]
        bins = self.config.group_bins
        f_cnn = self.cnn_tokens(views)
        if self.config.variant == "mini":
            x = self.mlp1(f_cnn.view(b, v, WIDTH))
            f_vit1 = self.norm(x)
            att = self.view_scores(f_vit1)
            groups = group_views(x, att, bins)
            f_vit2 = self.norm(self.mlp2(masked_max(groups.features, groups.mask)))
            feature = f_vit2
        else:
            f_vit1 = self.view_features(f_cnn)
            att = self.view_scores(f_vit1)
            cls_2, f_vit2 = self.group_features(group_views(f_vit1, att, bins, self.positions))
            feature = torch.cat([cls_2, f_vit2], dim=-1)
        f_global, logits = self.head(feature)
        return GMViTOutput.from_stages(f_cnn, f_vit1, att, f_vit2, f_global, logits)


def create_model(variant: str, num_views: int = 12, num_classes: int = 40, **kw: Any) -> GMViT:
    """A randomly initialised GMViT; `kw` are further `GMViTConfig` fields."""
    known = {f.name for f in fields(GMViTConfig)} - {"variant", "num_views", "num_classes"}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise GMViTError(f"unknown GMViT options: {', '.join(unknown)}")
    return GMViT(GMViTConfig(variant=variant, num_views=num_views, num_classes=num_classes, **kw))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
