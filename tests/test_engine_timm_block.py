"""Second reference: one stage of our blocks equals timm's SwinTransformerV2Block (bit-identical to Swin2SR's).

This checks the window-ordered residual stream (gathers, mask patterns, chunking) block by block, independently
of spandrel, on a map that needs every shift-mask pattern.
"""

from __future__ import annotations

import pytest
import torch

from swin2sr.arch import ResidualGroup, WindowLayout

timm_v2 = pytest.importorskip("timm.models.swin_transformer_v2", reason="timm is an optional second reference")


def timm_blocks(group: ResidualGroup, dim: int, heads: int, height: int, width: int) -> list[torch.nn.Module]:
    """timm blocks holding `group`'s weights (timm's derived buffers are non-persistent, so strict loading works)."""
    blocks = []
    for block in group.blocks:
        reference = timm_v2.SwinTransformerV2Block(
            dim, (height, width), heads, window_size=8, shift_size=block.shift, dynamic_mask=True, mlp_ratio=2.0
        )
        reference.load_state_dict(block.state_dict())
        blocks.append(reference.double().eval())
    return blocks


@pytest.mark.parametrize("chunk_tokens", [64, 4096])
def test_a_stage_of_blocks_matches_timm(chunk_tokens):
    torch.manual_seed(0)
    dim, heads, batch, height, width = 24, 3, 2, 24, 32
    group = ResidualGroup(dim, depth=4, num_heads=heads, window_size=8, mlp_ratio=2.0).double().eval()
    x = torch.randn(batch, height, width, dim, dtype=torch.float64)
    with torch.no_grad():
        ours = group(x, WindowLayout(batch, height, width, 8, chunk_tokens, x.device))
        expected = x
        for block in timm_blocks(group, dim, heads, height, width):
            expected = block(expected)
    assert torch.allclose(ours, expected, rtol=0, atol=1e-10)
