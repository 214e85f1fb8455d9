"""f_global and the logits held to the published definition, computed here with plain tensor
arithmetic from the state_dict: nothing of the model's head is reused, so a head that rewrites
its own output (an in-place ReLU on f_global) cannot agree with it."""

from __future__ import annotations

import pytest
import torch

from gmvit import create_model

SIZE = 32
BN_EPS = 1e-5  # PyTorch's BatchNorm1d default, which the published code uses


def batch_norm_eval(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    return (x - mean) / torch.sqrt(var + BN_EPS) * state[f"{prefix}.weight"] + state[
        f"{prefix}.bias"
    ]


def expected_head(feature: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """GMVIT_SPEC.md step 7 in eval mode: f_global = BN(Linear(feature)), no ReLU;
    logits = Linear(ReLU(BN(Linear(ReLU(f_global))))) (dropout is the identity)."""

    def linear(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return x @ state[f"{prefix}.weight"].T + state[f"{prefix}.bias"]

    f_global = batch_norm_eval(linear(feature, "cls_head_finetune.0"), state, "cls_head_finetune.1")
    hidden = torch.clamp(f_global, min=0)
    hidden = batch_norm_eval(linear(hidden, "cls_head_finetune.4"), state, "cls_head_finetune.5")
    logits = linear(torch.clamp(hidden, min=0), "cls_head_finetune.8")
    return f_global, logits


@pytest.mark.parametrize("variant", ["teacher", "simple", "mini"])
def test_f_global_and_logits_follow_the_published_definition(variant):
    torch.manual_seed(3)
    model = create_model(variant, 12, num_classes=6, image_size=SIZE)
    with torch.no_grad():  # running statistics far from (0, 1), so BatchNorm matters
        for index in (1, 5):
            bn = model.cls_head_finetune[index]
            bn.running_mean.copy_(torch.randn_like(bn.running_mean))
            bn.running_var.copy_(torch.rand_like(bn.running_var) * 3 + 0.2)
            bn.weight.copy_(torch.randn_like(bn.weight))
            bn.bias.copy_(torch.randn_like(bn.bias))
    model.eval()
    seen: list[torch.Tensor] = []
    # The head's input, observed (not computed) on its way into the first Linear.
    hook = model.cls_head_finetune[0].register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].detach().clone())
    )
    views = torch.randn(4, 12, 3, SIZE, SIZE)
    with torch.no_grad():
        out = model(views)
    hook.remove()
    (feature,) = seen
    if variant == "mini":
        assert torch.equal(feature, out.f_vit2)
    else:
        assert torch.equal(feature[:, 512:], out.f_vit2)

    f_global, logits = expected_head(feature, {k: v.clone() for k, v in model.state_dict().items()})
    assert (f_global < 0).any()  # otherwise the test could not tell a rectified f_global
    assert torch.allclose(out.f_global, f_global, atol=1e-5, rtol=1e-5)
    assert torch.allclose(out.logits, logits, atol=1e-5, rtol=1e-5)
    assert torch.allclose(out.descriptor, f_global / f_global.norm(dim=1, keepdim=True), atol=1e-6)
