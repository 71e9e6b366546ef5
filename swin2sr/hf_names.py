"""Hugging Face transformers names for Swin2SR weights, and back.

The `caidas/swin2SR-*` models on the Hugging Face hub hold the five released
checkpoints renamed by transformers' `convert_swin2sr_original_to_pytorch.py`:
everything but the head lives under `swin2sr.`, stages are `encoder.stages.i`,
blocks `layers.j`, and the fused `qkv` projection is split into `query`, `key`
and `value` (key without bias; the official `q_bias` / `v_bias` become the
query and value biases).  The derived buffers are not stored at all.

Both directions are a table of prefix renames plus the qkv split, so a file in
either naming loads into the same `Swin2SR` module and gives the same output.
"""

from __future__ import annotations

import re

import torch

from .arch import Swin2SRConfig

HF_PREFIX = "swin2sr."
_BLOCK = ("layers.{i}.residual_group.blocks.{j}.", "swin2sr.encoder.stages.{i}.layers.{j}.")

# (official prefix, HF prefix); {i}, {j} stand for stage and block numbers.
_BODY_RENAMES: tuple[tuple[str, str], ...] = (
    ("conv_first.", "swin2sr.first_convolution."),
    ("patch_embed.proj.", "swin2sr.embeddings.patch_embeddings.projection."),
    ("patch_embed.norm.", "swin2sr.embeddings.patch_embeddings.layernorm."),
    (_BLOCK[0] + "norm1.", _BLOCK[1] + "layernorm_before."),
    (_BLOCK[0] + "norm2.", _BLOCK[1] + "layernorm_after."),
    (_BLOCK[0] + "attn.logit_scale", _BLOCK[1] + "attention.self.logit_scale"),
    (_BLOCK[0] + "attn.cpb_mlp.", _BLOCK[1] + "attention.self.continuous_position_bias_mlp."),
    (_BLOCK[0] + "attn.q_bias", _BLOCK[1] + "attention.self.query.bias"),
    (_BLOCK[0] + "attn.v_bias", _BLOCK[1] + "attention.self.value.bias"),
    (_BLOCK[0] + "attn.proj.", _BLOCK[1] + "attention.output.dense."),
    (_BLOCK[0] + "mlp.fc1.", _BLOCK[1] + "intermediate.dense."),
    (_BLOCK[0] + "mlp.fc2.", _BLOCK[1] + "output.dense."),
    ("layers.{i}.conv.", "swin2sr.encoder.stages.{i}.conv."),
    ("layers.{i}.patch_embed.proj.", "swin2sr.encoder.stages.{i}.patch_embed.projection."),
    ("norm.", "swin2sr.layernorm."),
    ("conv_after_body.", "swin2sr.conv_after_body."),
)

# Heads with 64 intermediate features sit in an `upsample` module on the HF side.
_FEATURE_HEAD_RENAMES: tuple[tuple[str, str], ...] = (
    ("conv_before_upsample.0.", "upsample.conv_before_upsample."),
    *((f"upsample.{2 * k}.", f"upsample.upsample.convolution_{k}.") for k in range(4)),
    ("conv_last.", "upsample.final_convolution."),
    ("conv_bicubic.", "upsample.conv_bicubic."),
    ("conv_aux.", "upsample.conv_aux."),
    ("conv_after_aux.0.", "upsample.conv_after_aux.0."),
    ("conv_up1.", "upsample.conv_up1."),
    ("conv_up2.", "upsample.conv_up2."),
    ("conv_hr.", "upsample.conv_hr."),
)
_X3_HEAD_RENAMES = (("upsample.0.", "upsample.upsample.convolution."),)
_DIRECT_HEAD_RENAMES = (("upsample.0.", "upsample.conv."),)
_RESTORATION_HEAD_RENAMES = (("conv_last.", "final_convolution."),)

# HF names are unambiguous, so the way back can try every head's table.
_ALL_HEAD_RENAMES = _X3_HEAD_RENAMES + _FEATURE_HEAD_RENAMES + _DIRECT_HEAD_RENAMES + _RESTORATION_HEAD_RENAMES

_QKV = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight")
_HF_QKV = re.compile(r"swin2sr\.encoder\.stages\.(\d+)\.layers\.(\d+)\.attention\.self\.(query|key|value)\.weight")


def is_hf_state_dict(state: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(HF_PREFIX) for key in state)


def hf_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers `Swin2SRForImageSuperResolution` state dict to the official names.

    Keys that match no rule are kept as they are, so the strict load that
    follows reports them instead of silently losing weights.
    """
    rules = _compile(_BODY_RENAMES + _ALL_HEAD_RENAMES, reverse=True)
    out: dict[str, torch.Tensor] = {}
    qkv_parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _HF_QKV.fullmatch(key)
        if match:
            qkv_parts.setdefault(match.group(1, 2), {})[match.group(3)] = value
        else:
            out[_rename(key, rules)] = value
    for (i, j), parts in qkv_parts.items():
        name = f"layers.{i}.residual_group.blocks.{j}.attn.qkv.weight"
        if set(parts) == {"query", "key", "value"}:
            out[name] = torch.cat([parts["query"], parts["key"], parts["value"]])
        else:  # leave the pieces for the strict load to report as incomplete
            out.update({f"{name}.{part}": value for part, value in parts.items()})
    return out


def official_to_hf(state: dict[str, torch.Tensor], config: Swin2SRConfig) -> dict[str, torch.Tensor]:
    """The same weights under transformers' names (derived buffers dropped, as HF does not store them)."""
    rules = _compile(_BODY_RENAMES + _head_renames(config), reverse=False)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _QKV.fullmatch(key)
        if match:
            prefix = f"swin2sr.encoder.stages.{match.group(1)}.layers.{match.group(2)}.attention.self."
            for part, chunk in zip(("query", "key", "value"), value.chunk(3)):
                out[prefix + part + ".weight"] = chunk
        elif not key.endswith(("relative_coords_table", "relative_position_index", "attn_mask")):
            out[_rename(key, rules)] = value
    return out


def _head_renames(config: Swin2SRConfig) -> tuple[tuple[str, str], ...]:
    if config.upsampler == "pixelshuffledirect":
        return _DIRECT_HEAD_RENAMES
    if config.upsampler == "":
        return _RESTORATION_HEAD_RENAMES
    if config.scale == 3:
        return _X3_HEAD_RENAMES + _FEATURE_HEAD_RENAMES
    return _FEATURE_HEAD_RENAMES


_Rule = tuple[re.Pattern, str]


def _compile(pairs: tuple[tuple[str, str], ...], reverse: bool) -> list[_Rule]:
    """Each (source, target) template pair as an anchored regex plus a `str.format` target."""
    rules = []
    for official, hf in pairs:
        source, target = (hf, official) if reverse else (official, hf)
        pattern = re.escape(source).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
        rules.append((re.compile(pattern), target))
    return rules


def _rename(key: str, rules: list[_Rule]) -> str:
    for pattern, target in rules:
        match = pattern.match(key)
        if match:
            return target.format(**match.groupdict()) + key[match.end() :]
    return key
