"""The Swin2SR configuration and the variant name, inferred from tensor shapes and key names only.

File names are never consulted, so renamed files and custom trainings are
recognised from what they contain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from .arch import Swin2SRConfig
from .checkpoint_files import CheckpointError, StateDict

# safetensors metadata keys (also taken from a Hugging Face config.json) for what the weights cannot tell.
METADATA_FIELDS = ("window_size", "img_size", "img_range")

_RELEASE_BODY = dict(embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, mlp_ratio=2.0, resi_connection="1conv")
_LIGHTWEIGHT_BODY = dict(_RELEASE_BODY, embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4)
_SR = dict(in_chans=3, window_size=8)
# (name, fields a config must have) for the released checkpoints.
RELEASED_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("JPEG CAR", dict(_RELEASE_BODY, window_size=7, upsampler="", scale=1)),
    ("ClassicalSR x2", dict(_RELEASE_BODY, **_SR, upsampler="pixelshuffle", scale=2)),
    ("ClassicalSR x4", dict(_RELEASE_BODY, **_SR, upsampler="pixelshuffle", scale=4)),
    ("CompressedSR x4", dict(_RELEASE_BODY, **_SR, upsampler="pixelshuffle_aux", scale=4)),
    ("RealworldSR x4", dict(_RELEASE_BODY, **_SR, upsampler="nearest+conv", scale=4)),
    ("Lightweight x2", dict(_LIGHTWEIGHT_BODY, **_SR, upsampler="pixelshuffledirect", scale=2)),
)


def infer_config(state: StateDict, metadata: Mapping[str, str] | None = None) -> Swin2SRConfig:
    """The network configuration, from tensor shapes and key names (plus our own safetensors metadata).

    Window size and training size come from the stored index buffer and
    shift mask; files without buffers (Hugging Face) use their metadata
    (safetensors metadata or a Hugging Face config.json), else the release
    values (window 8, img_size 8 windows).  Our own files record the training
    size in their metadata, which wins: their mask is stored at its smallest
    size for spandrel (`loader.spandrel_buffers`).  img_range is 255
    exactly for window 7, as in the JPEG releases (spandrel uses the same rule).
    """
    metadata = metadata or {}
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = _stage_depths(state)
    window = _window_size(state) or int(metadata.get("window_size", 0)) or 8
    upsampler = _upsampler(state)
    _reject_unsupported(state)
    return Swin2SRConfig(
        embed_dim=int(embed_dim),
        depths=depths,
        num_heads=tuple(
            int(state[f"layers.{i}.residual_group.blocks.0.attn.logit_scale"].shape[0]) for i in range(len(depths))
        ),
        window_size=window,
        img_size=int(metadata.get("img_size", 0)) or _img_size(state, window) or window * 8,
        mlp_ratio=state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        upsampler=upsampler,
        img_range=float(metadata.get("img_range", 255.0 if window == 7 else 1.0)),
        in_chans=int(in_chans),
        resi_connection="3conv" if "conv_after_body.0.weight" in state else "1conv",
        scale=_scale(state, upsampler, int(in_chans)),
        patch_norm="patch_embed.norm.weight" in state,
    )


def _stage_depths(state: StateDict) -> tuple[int, ...]:
    depths = []
    while f"layers.{len(depths)}.residual_group.blocks.0.norm1.weight" in state:
        i, depth = len(depths), 0
        while f"layers.{i}.residual_group.blocks.{depth}.norm1.weight" in state:
            depth += 1
        depths.append(depth)
    return tuple(depths)


def _window_size(state: StateDict) -> int | None:
    """The window side from a stored buffer ([..., M*M] per window); one of another shape is named, not trusted."""
    key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
    if key not in state:
        key = "layers.0.residual_group.blocks.1.attn_mask"
    if key not in state:
        return None
    shape = tuple(state[key].shape)
    window = math.isqrt(shape[-1]) if len(shape) >= 2 else 0
    if len(shape) < 2 or window * window != shape[-1] or shape[-2] != shape[-1]:
        raise CheckpointError(f"tensor {key!r} has shape {shape}, which no window size gives; "
                              "the file is damaged: use the complete original file")  # fmt: skip
    return window


def _img_size(state: StateDict, window: int) -> int | None:
    """The training patch size, from the number of windows in the stored shift mask."""
    mask = state.get("layers.0.residual_group.blocks.1.attn_mask")
    return math.isqrt(mask.shape[0]) * window if mask is not None else None


def _upsampler(state: StateDict) -> str:
    if "conv_bicubic.weight" in state:
        return "pixelshuffle_aux"
    if "conv_hr.weight" in state:
        return "nearest+conv"
    if "conv_before_upsample.0.weight" in state:
        return "pixelshuffle"
    if "upsample.0.weight" in state:
        return "pixelshuffledirect"
    return ""


def _scale(state: StateDict, upsampler: str, in_chans: int) -> int:
    if upsampler == "pixelshuffledirect":
        return math.isqrt(state["upsample.0.weight"].shape[0] // in_chans)
    if upsampler == "nearest+conv":
        return 4
    if upsampler == "":
        return 1
    convs = [state[k] for k in sorted(state) if re.fullmatch(r"upsample\.\d+\.weight", k)]
    if len(convs) == 1 and convs[0].shape[0] == 9 * convs[0].shape[1]:
        return 3
    return 2 ** len(convs)


def _reject_unsupported(state: StateDict) -> None:
    """Options this network does not implement: official ones no release uses, and transformers-only ones.

    transformers' `Swin2SRForImageSuperResolution` can build networks the original code cannot; weights from
    those would otherwise be refused as "incomplete", which misdescribes them.  Each is named instead.
    """
    unsupported = {
        "conv_after_body_hf.weight": "the 'pixelshuffle_hf' head, which no released model uses",
        "absolute_pos_embed": "absolute position embeddings (ape=True), which no released model uses",
        "swin2sr.embeddings.position_embeddings": "transformers' absolute position embeddings "
        "(use_absolute_embeddings=True), which the original network cannot load",
    }
    for key, what in unsupported.items():
        if key in state:
            raise CheckpointError(f"this Swin2SR checkpoint uses {what}; not supported")
    patch = state["patch_embed.proj.weight"].shape[-1] if "patch_embed.proj.weight" in state else 1
    if patch != 1:
        raise CheckpointError(f"this Swin2SR checkpoint uses patch size {patch}; only patch size 1 is supported")
    if "layers.0.residual_group.blocks.0.attn.q_bias" not in state and "layers.0.residual_group.blocks.0.attn.qkv.weight" in state:
        raise CheckpointError("this Swin2SR checkpoint has no query/value biases (qkv_bias=False), which no "
                              "released model uses; not supported")  # fmt: skip
    if "layers.0.conv.0.weight" in state and "conv_after_body.weight" in state:
        raise CheckpointError("this checkpoint uses transformers' resi_connection='3conv' variant (three-conv "
                              "stages but a one-conv body end), which the original network cannot build; "
                              "not supported")  # fmt: skip
    _reject_channel_change(state)


def _reject_channel_change(state: StateDict) -> None:
    """transformers' num_channels_out may differ from num_channels; the original network has one in_chans."""
    in_chans = int(state["conv_first.weight"].shape[1])
    if "upsample.0.weight" in state and "conv_before_upsample.0.weight" not in state:  # pixelshuffledirect
        out_key, rows = "upsample.0.weight", int(state["upsample.0.weight"].shape[0])
        same = rows % in_chans == 0 and math.isqrt(rows // in_chans) ** 2 == rows // in_chans
        out_chans = in_chans if same else None
    else:
        out_key = "conv_last.weight"
        out_chans = int(state[out_key].shape[0]) if out_key in state else in_chans
    if out_chans != in_chans:
        shown = "a different number of" if out_chans is None else f"{out_chans}"
        raise CheckpointError(f"this checkpoint maps {in_chans} input channel(s) (conv_first.weight) to {shown} "
                              f"output channels ({out_key}): transformers' num_channels_out, which the original "
                              "network cannot build, or a damaged file; not supported")  # fmt: skip


def describe_variant(config: Swin2SRConfig) -> str:
    """The release name for a released configuration, an honest description otherwise."""
    for name, fields in RELEASED_VARIANTS:
        if all(getattr(config, key) == value for key, value in fields.items()):
            return name + (" (grayscale)" if config.in_chans == 1 else "")
    depths = config.depths
    blocks = f"{len(depths)}x{depths[0]}" if len(set(depths)) == 1 else "+".join(map(str, depths))
    return f"Swin2SR x{config.scale} (custom: embed {config.embed_dim}, {blocks} blocks)"
