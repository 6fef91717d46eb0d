"""Make the golden MoE fixtures in golden/hf/ with Hugging Face transformers.

Set-up (CPU only, no network: the machine's local package mirror):

    python3 -m venv .venv
    .venv/bin/pip install --index-url file:///opt/pypi/simple \
        --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels \
        -r golden/tools/requirements.txt

Make the eight fixtures added after the first twelve (16 folders, f32 and bf16):

    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf \
        --types minimax phimoe deepseek_v2 ernie4_5_moe hunyuan_v1_moe dots1 qwen3_next flex_olmo

and the 4 with new semantics of issue 14 (ISSUE14_B_SPECS):

    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf --types step3p7 minimax_m3_vl gemma4_text inkling_text

and the 23 added for issue 14 (NEW_SPECS below: other sizes, dense layers, F32-kept tensors):

    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf --types minimax_m2 glm4_moe_lite \
        deepseek_v32 glm_moe_dsa exaone_moe solar_open mimo_v2_flash afmoe hy_v3 granitemoeshared \
        granitemoehybrid mellum nemotron_h mistral4 cohere2_moe laguna qwen3_5_moe_text qwen3_vl_moe \
        jetmoe longcat_flash kimi_linear glm4v_moe glm5_next

and batch a of issue 14's second round (BATCH_A_SPECS):

    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf --types qwen3_omni_moe qwen4_exp_text qwen4_exp \
        deepseek_ocr2 granitemoe_swa aria_text aria axk1 axk2 hy_v4 llama4
the four added in session 2 by s2-i14-c (deepseek_v4 with token ids, zaya with the carried
router state, doge, openai_privacy_filter), and the remade granitemoeshared/-hybrid (output
with the layer's shared_mlp) and nemotron_h f32 (latent MoE):

    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf --types deepseek_v4 zaya doge \
        openai_privacy_filter granitemoeshared granitemoehybrid
    .venv/bin/python golden/tools/make_fixtures.py --out golden/hf --types nemotron_h --dtypes f32

Regenerate a shipped type into a scratch folder and check that its tensor names, shapes
and dtypes (checkpoint files and golden.safetensors) and its golden.json match the
shipped folder (values differ: they depend on the seed):

    .venv/bin/python golden/tools/make_fixtures.py --out /tmp/regen --types mixtral \
        --check-against golden/hf

Write the tensor-name and routing-field table for the layout registry:

    .venv/bin/python golden/tools/make_fixtures.py --names-only --out golden/hf \
        --types ... --names golden/tools/NAMES.md

What each folder holds is described in golden/hf/README.md. In short: a tiny random model
(hidden 48, expert intermediate 20, 8 routed experts, top-2, 2 decoder layers, both MoE),
every saved tensor redrawn from N(0, 0.1^2) (1-D tensors N(0, 0.05^2)); `original/` and
`fused/` saves; per MoE layer the block's input (N(0, 1), 24 tokens), output and the
router's raw logits, captured by forward hooks on the MoE block and on its router.
bf16 folders: the weights are rounded to bf16 and the forward still runs in float32.
Every folder is reloaded from both layouts and recomputed before the script reports it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

TOKENS = 24
HIDDEN = 48
EXPERT_INTERMEDIATE = 20
EXPERTS = 8
TOP_K = 2
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}
SAFETENSORS_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16"}
# Recomputing the block from the reloaded checkpoint runs the same code on the same
# bits, so anything above float32 rounding noise means the save or the load changed a value.
RECOMPUTE_TOLERANCE = 1e-6

# Fields shared by every tiny model: small vocabulary and attention, no tied embeddings.
BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 96,
    "hidden_size": HIDDEN,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 12,
    "max_position_embeddings": 64,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}


@dataclass(frozen=True)
class FixtureSpec:
    """One model type: its config for a dtype and where its router's raw logits come from."""

    model_type: str
    config: Callable[[str], dict[str, Any]]  # dtype tag ("f32" | "bf16") -> config overrides
    router_attr: str | None  # child of the MoE block whose output[0] is the raw logits
    routing_fields: tuple[str, ...]  # config fields that drive routing (for NAMES.md)
    # Decoder layers that hold an MoE block, per dtype tag; None: every layer.
    moe_layers: Callable[[str], tuple[int, ...]] | None = None
    # The causal-LM class where AutoModelForCausalLM does not map the type (mistral4).
    model_class: str | None = None
    # The config is complete as given (a vision-language config with text_config): no BASE_CONFIG merged in.
    nested_config: bool = False
    # Rewrites original/'s tensors after saving, for a type whose published layout transformers
    # reads but does not write (qwen3_vl_moe): name -> tensor, returning the new tensors.
    original_transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    # The decoder layer's child that is the MoE block, where another child also holds `experts`
    # (jetmoe's mixture-of-attention); None: the child that holds `experts`.
    block: str | None = None
    # The MoE branch is the decoder layer's own router and experts (gemma4): the recorded block
    # is experts(pre_feedforward_layernorm_2(x), router(x)), x the layer's residual stream.
    in_decoder_layer: bool = False
    # Tensors (name suffixes) that multiply and are initialised at 1 (gemma4's router scales and
    # norm weight): redrawn from N(1, 0.5^2) so that the branch's values are not vanishingly small.
    near_one: tuple[str, ...] = ()
    # A child of the decoder layer beside the block, fed the same input, whose output the layer
    # adds to the block's (granitemoeshared's shared_mlp): recorded as part of the block's output.
    beside: str | None = None


def causal_lm(spec: FixtureSpec) -> Any:
    return getattr(transformers, spec.model_class) if spec.model_class else AutoModelForCausalLM


def _mixtral(_: str) -> dict[str, Any]:
    return {"intermediate_size": EXPERT_INTERMEDIATE, "num_local_experts": EXPERTS, "num_experts_per_tok": TOP_K}


def _minimax(_: str) -> dict[str, Any]:
    # One lightning (linear) and one full attention layer, both followed by the MoE block.
    return {
        "intermediate_size": EXPERT_INTERMEDIATE,
        "num_local_experts": EXPERTS,
        "num_experts_per_tok": TOP_K,
        "layer_types": ["linear_attention", "full_attention"],
        "block_size": 16,
    }


def _phimoe(_: str) -> dict[str, Any]:
    # router_jitter_noise keeps its config default (0.01): in eval it sets sparsemixer's mask threshold.
    return {"intermediate_size": EXPERT_INTERMEDIATE, "num_local_experts": EXPERTS, "num_experts_per_tok": TOP_K}


def _deepseek_v2(dtype: str) -> dict[str, Any]:
    # f32 exercises group-limited selection (group score = max), bf16 plain greedy.
    routing = (
        {"topk_method": "group_limited_greedy", "n_group": 2, "topk_group": 1}
        if dtype == "f32"
        else {"topk_method": "greedy", "n_group": 1, "topk_group": 1}
    )
    return {
        "intermediate_size": 36,
        "moe_intermediate_size": EXPERT_INTERMEDIATE,
        "n_routed_experts": EXPERTS,
        "n_shared_experts": 1,
        "num_experts_per_tok": TOP_K,
        "first_k_dense_replace": 0,
        "routed_scaling_factor": 1.5,
        "kv_lora_rank": 16,
        "q_lora_rank": 32,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 12,
        **routing,
    }


def _ernie4_5_moe(dtype: str) -> dict[str, Any]:
    # f32: moe_norm_min above most top-2 probability sums, so the clamp is taken for many
    # tokens; bf16: the default (plain renormalisation).
    return {
        "intermediate_size": 36,
        "moe_intermediate_size": EXPERT_INTERMEDIATE,
        "moe_num_experts": EXPERTS,
        "moe_k": TOP_K,
        "moe_num_shared_experts": 1,
        "moe_layer_start_index": 0,
        "moe_layer_end_index": -1,
        "moe_layer_interval": 1,
        "moe_norm_min": 0.5 if dtype == "f32" else 1e-12,
    }


def _hunyuan_v1_moe(_: str) -> dict[str, Any]:
    # The shared MLP uses intermediate_size too, so Is = I = 20 here.
    return {
        "intermediate_size": EXPERT_INTERMEDIATE,
        "num_experts": EXPERTS,
        "moe_topk": TOP_K,
        "use_qk_norm": True,
    }


def _dots1(dtype: str) -> dict[str, Any]:
    groups = {"n_group": 4, "topk_group": 2} if dtype == "f32" else {"n_group": 2, "topk_group": 1}
    return {
        "intermediate_size": 36,
        "moe_intermediate_size": EXPERT_INTERMEDIATE,
        "n_routed_experts": EXPERTS,
        "n_shared_experts": 1,
        "num_experts_per_tok": TOP_K,
        "first_k_dense_replace": 0,
        "norm_topk_prob": dtype == "f32",
        "routed_scaling_factor": 2.0,
        "sliding_window": None,
        **groups,
    }


def _qwen3_next(dtype: str) -> dict[str, Any]:
    # One linear (gated delta net) and one full attention layer, kept tiny; only the MoE block is hooked.
    return {
        "intermediate_size": 36,
        "moe_intermediate_size": EXPERT_INTERMEDIATE,
        "shared_expert_intermediate_size": 28,
        "num_experts": EXPERTS,
        "num_experts_per_tok": TOP_K,
        "norm_topk_prob": dtype == "f32",
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "layer_types": ["linear_attention", "full_attention"],
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
    }


def _flex_olmo(dtype: str) -> dict[str, Any]:
    return {
        "intermediate_size": EXPERT_INTERMEDIATE,
        "num_experts": EXPERTS,
        "num_experts_per_tok": TOP_K,
        "norm_topk_prob": dtype == "bf16",
    }


# The types added after the first 20 use other sizes: 2I == H (a transposed [E, H, 2I] tensor
# has the shape of an untransposed one), I < H, and 12 experts (expert 10 sorts before
# expert 2 as a string). Attention is kept tiny around them.
NEW_HIDDEN = 32
NEW_INTERMEDIATE = 16
NEW_EXPERTS = 12


def _new_sizes(**fields: Any) -> dict[str, Any]:
    """hidden 32 with 4 heads of 8, then the type's own fields."""
    return {"hidden_size": NEW_HIDDEN, "head_dim": 8, "num_attention_heads": 4, "num_key_value_heads": 2, **fields}


def _mla() -> dict[str, Any]:
    """Multi-head latent attention, tiny (deepseek_v3-style types)."""
    return {"kv_lora_rank": 16, "q_lora_rank": 24, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8}


def _minimax_m2(_: str) -> dict[str, Any]:
    return _new_sizes(intermediate_size=NEW_INTERMEDIATE, num_local_experts=NEW_EXPERTS, num_experts_per_tok=TOP_K)


def _dsv3_groups(dtype: str) -> dict[str, Any]:
    # f32: 4 groups of 3 experts, 2 kept (the group rule decides); bf16: one group.
    return {"n_group": 4, "topk_group": 2} if dtype == "f32" else {"n_group": 1, "topk_group": 1}


def _glm4_moe_lite(dtype: str) -> dict[str, Any]:
    # Three layers, mlp_layer_types left to its default: the first dense, then MoE.
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1,
        num_experts_per_tok=TOP_K,
        routed_scaling_factor=1.8,
        norm_topk_prob=dtype == "f32",
        **_dsv3_groups(dtype),
        **_mla(),
    )


def _deepseek_v32(dtype: str) -> dict[str, Any]:
    # f32: first_k_dense_replace 1; bf16: an explicit mlp_layer_types with the dense layer in the middle.
    layers = {"first_k_dense_replace": 1} if dtype == "f32" else {"mlp_layer_types": ["sparse", "dense", "sparse"]}
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1,
        num_experts_per_tok=TOP_K,
        routed_scaling_factor=2.5,
        index_n_heads=2,
        index_head_dim=8,
        index_topk=8,
        **layers,
        **_dsv3_groups(dtype),
        **_mla(),
    )


def _glm_moe_dsa(dtype: str) -> dict[str, Any]:
    return {**_deepseek_v32(dtype), "routed_scaling_factor": 1.5}


def _exaone_moe(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_shared_experts=2 if dtype == "f32" else 1,
        num_experts_per_tok=TOP_K,
        first_k_dense_replace=1,
        routed_scaling_factor=2.5,
        **_dsv3_groups(dtype),
    )


def _solar_open(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1,
        num_experts_per_tok=TOP_K,
        routed_scaling_factor=2.0,
        norm_topk_prob=dtype == "f32",
        **_dsv3_groups(dtype),
    )


def _mimo_v2_flash(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        routed_scaling_factor=None if dtype == "bf16" else 1.5,
        v_head_dim=8,
        sliding_window=8,
        **_dsv3_groups(dtype),
    )


def _afmoe(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_shared_experts=1 if dtype == "f32" else 2,
        num_experts_per_tok=TOP_K,
        num_dense_layers=1,
        route_scale=1.5,
    )


def _hy_v3(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_shared_experts=1,
        num_experts_per_tok=TOP_K,
        router_scaling_factor=2.826 if dtype == "f32" else 1.25,
    )


def _granitemoeshared(_: str) -> dict[str, Any]:
    return _new_sizes(intermediate_size=NEW_INTERMEDIATE, num_local_experts=NEW_EXPERTS, num_experts_per_tok=TOP_K, shared_intermediate_size=24)


def _granitemoehybrid(_: str) -> dict[str, Any]:
    return _new_sizes(
        intermediate_size=NEW_INTERMEDIATE,
        num_local_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        shared_intermediate_size=24,
        layer_types=["mamba", "attention"],
        mamba_n_heads=4,
        mamba_d_head=16,
        mamba_d_state=8,
        mamba_n_groups=1,
        mamba_chunk_size=16,
    )


def _mellum(dtype: str) -> dict[str, Any]:
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        norm_topk_prob=dtype == "f32",
        mlp_layer_types=["dense", "sparse", "sparse"],
    )


def _nemotron_h(dtype: str) -> dict[str, Any]:
    # Hybrid stacks: MoE layers between attention (f32) or mamba (bf16) layers; non-gated relu² experts.
    # f32: latent MoE (experts in moe_latent_size 24 between fc1/fc2_latent_proj).
    layers = ["moe", "attention", "moe"] if dtype == "f32" else ["mamba", "moe"]
    latent = {"moe_latent_size": 24} if dtype == "f32" else {}
    return _new_sizes(
        num_hidden_layers=len(layers),
        layers_block_type=layers,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        moe_shared_expert_intermediate_size=24,
        n_routed_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        routed_scaling_factor=2.0,
        mamba_num_heads=4,
        mamba_head_dim=8,
        ssm_state_size=8,
        n_groups=1,
        chunk_size=16,
        **latent,
        **_dsv3_groups(dtype),
    )


def _mistral4(dtype: str) -> dict[str, Any]:
    # Softmax group-limited routing: f32 4 groups of 3, 2 kept; bf16 one group, not renormalised.
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1,
        num_experts_per_tok=TOP_K,
        first_k_dense_replace=1,
        routed_scaling_factor=1.5,
        norm_topk_prob=dtype == "f32",
        **_dsv3_groups(dtype),
        **_mla(),
    )


def _cohere2_moe(dtype: str) -> dict[str, Any]:
    # f32: sigmoid selection, renormalised, shared expert averaged in; bf16: softmax selection,
    # shared expert summed. Three layers, the first dense.
    routing = (
        {"expert_selection_fn": "sigmoid", "norm_topk_prob": True, "shared_expert_combination_strategy": "average"}
        if dtype == "f32"
        else {"expert_selection_fn": "softmax", "shared_expert_combination_strategy": "sum"}
    )
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=NEW_INTERMEDIATE,
        prefix_dense_intermediate_size=40,
        num_experts=NEW_EXPERTS,
        num_shared_experts=1,
        num_experts_per_tok=TOP_K,
        mlp_layer_types=["dense", "sparse", "sparse"],
        sliding_window=8,
        **routing,
    )


def _laguna(dtype: str) -> dict[str, Any]:
    # f32 soft-caps the router logits (then the recorded logits are the capped ones: not hooked).
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        shared_expert_intermediate_size=24,
        num_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        mlp_layer_types=["dense", "sparse", "sparse"],
        moe_routed_scaling_factor=1.5,
        moe_router_logit_softcapping=2.0 if dtype == "f32" else 0.0,
    )


def _qwen3_5_moe_text(_: str) -> dict[str, Any]:
    # One Gated DeltaNet and one full-attention layer, both followed by the MoE block.
    return _new_sizes(
        moe_intermediate_size=NEW_INTERMEDIATE,
        shared_expert_intermediate_size=24,
        num_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        layer_types=["linear_attention", "full_attention"],
        linear_conv_kernel_dim=4,
        linear_key_head_dim=8,
        linear_value_head_dim=8,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
    )


def _qwen3_vl_moe(_: str) -> dict[str, Any]:
    # The text decoder is what is recorded; the vision tower is kept minimal. I = 24: the
    # published (transposed) gate_up_proj [E, H, 2I] differs in shape from v5's, which
    # transformers' check_dims conversion needs to read it right.
    text = _new_sizes(
        vocab_size=96,
        num_hidden_layers=2,
        max_position_embeddings=64,
        intermediate_size=40,
        moe_intermediate_size=24,
        num_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
    )
    vision = {
        "depth": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 16, "out_hidden_size": NEW_HIDDEN,
        "patch_size": 4, "temporal_patch_size": 1, "spatial_merge_size": 1, "deepstack_visual_indexes": [],
        "num_position_embeddings": 16,
    }
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}


def _transpose_experts(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """qwen3_vl_moe as published: experts.gate_up_proj [E, H, 2I] and down_proj [E, I, H]."""
    return {k: (v.transpose(1, 2) if re.search(r"\.mlp\.experts\.(gate_up|down)_proj$", k) else v) for k, v in tensors.items()}


def _jetmoe(_: str) -> dict[str, Any]:
    # num_attention_heads = num_key_value_heads × top-k (the attention is a mixture of experts too).
    return _new_sizes(intermediate_size=NEW_INTERMEDIATE, num_local_experts=NEW_EXPERTS, num_experts_per_tok=TOP_K, kv_channels=8)


def _longcat_flash(dtype: str) -> dict[str, Any]:
    # 12 real and 4 zero-compute experts (f32 with a router bias), top-3 so identity experts are
    # chosen often; num_hidden_layers counts the two attention sublayers of each of num_layers.
    return _new_sizes(
        num_layers=2,
        num_hidden_layers=4,
        ffn_hidden_size=40,
        expert_ffn_hidden_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        zero_expert_num=4,
        moe_topk=3,
        routed_scaling_factor=2.0,
        router_bias=dtype == "f32",
        **_mla(),
    )


def _kimi_linear(dtype: str) -> dict[str, Any]:
    # One KDA (linear) and two full-attention layers; the first is dense (its MLP is saved
    # under block_sparse_moe. too).
    return _new_sizes(
        num_hidden_layers=3,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_experts_per_token=TOP_K,
        num_shared_experts=1,
        mlp_layer_types=["dense", "sparse", "sparse"],
        routed_scaling_factor=2.446,
        moe_renormalize=dtype == "f32",
        num_expert_group=4 if dtype == "f32" else 1,
        topk_group=2 if dtype == "f32" else 1,
        linear_attn_config={"head_dim": 8, "num_heads": 4, "short_conv_kernel_size": 4, "full_attn_layers": [1, 3], "kda_layers": [2]},
        **_mla(),
    )


def _glm4v_moe(dtype: str) -> dict[str, Any]:
    # The text decoder is what is recorded (three layers, the first dense); the vision tower is minimal.
    text = _new_sizes(
        vocab_size=96,
        num_hidden_layers=3,
        max_position_embeddings=64,
        intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1,
        num_experts_per_tok=TOP_K,
        first_k_dense_replace=1,
        routed_scaling_factor=1.5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5},
        **_dsv3_groups(dtype),
    )
    vision = {
        "depth": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 16, "out_hidden_size": NEW_HIDDEN,
        "patch_size": 4, "temporal_patch_size": 1, "spatial_merge_size": 1, "image_size": 8,
    }
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}


def _glm5_next(dtype: str) -> dict[str, Any]:
    # Clamped SwiGLU with a small limit (0.5) so that clamping is often in play; MLA without
    # RoPE (DSA layers require it), a tiny indexer and vision tower; the text decoder is recorded.
    text = {
        "vocab_size": 96, "hidden_size": NEW_HIDDEN, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 64, "pad_token_id": 0,
        "n_routed_experts": NEW_EXPERTS, "n_shared_experts": 1, "moe_intermediate_size": NEW_INTERMEDIATE,
        "num_experts_per_tok": TOP_K, "intermediate_size": 40, "routed_scaling_factor": 1.5,
        "mlp_layer_types": ["dense", "sparse", "sparse"] if dtype == "f32" else ["sparse", "dense", "sparse"],
        "layer_types": ["full_attention"] * 3,
        "kv_lora_rank": 16, "q_lora_rank": 24, "qk_rope_head_dim": 0, "qk_nope_head_dim": 8, "v_head_dim": 8,
        "index_topk": 16, "index_kpool": 4, "index_head_dim": 8, "index_n_heads": 2,
        "linear_head_dim": 8, "linear_num_heads": 4, "hc_mult": 2, "swiglu_limit": 0.5,
        **_dsv3_groups(dtype),
    }
    vision = {
        "depth": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 16, "out_hidden_size": NEW_HIDDEN,
        "patch_size": 4, "temporal_patch_size": 1, "spatial_merge_size": 1, "image_size": 8, "projection_intermediate_size": 16,
    }
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}



# ---- issue 14, types with new semantics (branch s2-i14-b) ----

def _step3p7(dtype: str) -> dict[str, Any]:
    # Clamp after SiLU with per-layer limits (0: none), so clamped and unclamped routed and
    # shared experts both occur; stacked gate/up on disk in the original. Text decoder recorded.
    f32 = dtype == "f32"
    text = {
        "vocab_size": 96, "hidden_size": NEW_HIDDEN, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "max_position_embeddings": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "intermediate_size": 40, "moe_intermediate_size": NEW_INTERMEDIATE, "n_routed_experts": NEW_EXPERTS,
        "num_experts_per_tok": TOP_K, "share_expert_dim": 24, "moe_router_scaling_factor": 1.5 if f32 else 2.0,
        "mlp_layer_types": ["dense", "sparse", "sparse"] if f32 else ["sparse", "dense", "sparse"],
        "swiglu_limits": [0.0, 0.5, 0.0] if f32 else [0.6, 0.0, 0.6],
        "swiglu_limits_shared": [0.0, 0.0, 0.7] if f32 else [0.0, 0.0, 0.4],
    }
    vision = {"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}


def _minimax_m3_vl(dtype: str) -> dict[str, Any]:
    # gpt_oss's clamped GLU (limit 0.5 so clamping is in play) on plain gate/up halves, a shared
    # expert whose v5 form fuses gate/up, routed sum x routed_scaling_factor.
    f32 = dtype == "f32"
    text = {
        "vocab_size": 96, "hidden_size": NEW_HIDDEN, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "rotary_dim": 4, "max_position_embeddings": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "intermediate_size": NEW_INTERMEDIATE, "dense_intermediate_size": 40, "shared_intermediate_size": 24,
        "num_local_experts": NEW_EXPERTS, "num_experts_per_tok": TOP_K, "routed_scaling_factor": 1.5 if f32 else 2.0,
        "swiglu_limit": 0.5 if f32 else 1.0, "swiglu_alpha": 1.702,
        "mlp_layer_types": ["dense", "sparse", "sparse"] if f32 else ["sparse", "dense", "sparse"],
        "index_n_heads": 2, "index_head_dim": 8,
    }
    vision = {
        "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 4,
        "temporal_patch_size": 1, "spatial_merge_size": 1, "image_size": 8,
    }
    return {"text_config": text, "vision_config": vision, "projector_hidden_size": NEW_HIDDEN, "tie_word_embeddings": False}


def _gemma4_text(dtype: str) -> dict[str, Any]:
    # Every layer has the MoE branch beside its dense MLP; no per-layer inputs (tiny embeddings).
    return _new_sizes(
        num_hidden_layers=2, global_head_dim=8, intermediate_size=40, moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS, top_k_experts=TOP_K if dtype == "f32" else 3, enable_moe_block=True,
        hidden_size_per_layer_input=0, vocab_size_per_layer_input=96, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"], rms_norm_eps=1e-6 if dtype == "f32" else 1e-5,
    )


def _inkling_text(dtype: str) -> dict[str, Any]:
    # Several router-weighted shared experts: three in f32, so that a TP rank's shared rows
    # (3I/2 at TP 2, 3I/4 at TP 4) span two shared experts, two in bf16; three layers, the
    # first dense; tiny sliding-window attention too.
    return _new_sizes(
        num_hidden_layers=3, swa_num_attention_heads=4, swa_num_key_value_heads=2, swa_head_dim=8, sliding_window_size=8,
        intermediate_size=40, moe_intermediate_size=NEW_INTERMEDIATE, n_routed_experts=NEW_EXPERTS, n_shared_experts=3 if dtype == "f32" else 2,
        num_experts_per_tok=TOP_K, route_scale=1.5 if dtype == "f32" else 2.5,
        mlp_layer_types=["dense", "sparse", "sparse"] if dtype == "f32" else ["sparse", "dense", "sparse"],
    )


ISSUE14_B_SPECS = [
    # The router's recorded output is the routed logits only ([E] of its [E + S]): not hooked.
    FixtureSpec(
        "inkling_text", _inkling_text, None, ("n_routed_experts", "n_shared_experts", "num_experts_per_tok", "route_scale", "mlp_layer_types"),
        lambda d: (1, 2) if d == "f32" else (0, 2), near_one=("gate.global_scale",),
    ),
    FixtureSpec(
        "gemma4_text", _gemma4_text, "router.proj", ("num_experts", "top_k_experts", "moe_intermediate_size", "enable_moe_block", "rms_norm_eps"),
        in_decoder_layer=True, near_one=("router.scale", "router.per_expert_scale", "pre_feedforward_layernorm_2.weight"),
    ),
    FixtureSpec(
        "step3p7", _step3p7, "gate",
        ("n_routed_experts", "num_experts_per_tok", "moe_router_scaling_factor", "share_expert_dim", "swiglu_limits", "swiglu_limits_shared", "mlp_layer_types"),
        lambda d: (1, 2) if d == "f32" else (0, 2), "Step3p7ForConditionalGeneration", nested_config=True,
    ),
    FixtureSpec(
        "minimax_m3_vl", _minimax_m3_vl, "gate",
        ("num_local_experts", "num_experts_per_tok", "routed_scaling_factor", "shared_intermediate_size", "swiglu_limit", "swiglu_alpha", "mlp_layer_types"),
        lambda d: (1, 2) if d == "f32" else (0, 2), "MiniMaxM3SparseForConditionalGeneration", nested_config=True,
    ),
]


# ---- issue 14, batch a (s2-i14-a): qwen3_omni_moe, qwen4_exp_text, deepseek_ocr2, granitemoe_swa, aria_text, aria, axk2, hy_v4, llama4 ----


def _qwen3_omni_moe(dtype: str) -> dict[str, Any]:
    # The thinker's text decoder is recorded; audio and vision towers minimal, no talker (enable_audio_output False).
    text = _new_sizes(
        vocab_size=96, num_hidden_layers=2, max_position_embeddings=64, intermediate_size=40,
        moe_intermediate_size=NEW_INTERMEDIATE, num_experts=NEW_EXPERTS, num_experts_per_tok=TOP_K,
        norm_topk_prob=dtype == "f32", decoder_sparse_step=1, mlp_only_layers=[],
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
    )
    audio = {"num_mel_bins": 8, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 16, "d_model": 16,
             "output_dim": NEW_HIDDEN, "downsample_hidden_size": 8, "max_source_positions": 16, "n_window": 4}
    vision = {"depth": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 16, "out_hidden_size": NEW_HIDDEN,
              "patch_size": 4, "temporal_patch_size": 1, "spatial_merge_size": 1, "deepstack_visual_indexes": [], "num_position_embeddings": 16}
    return {"thinker_config": {"text_config": text, "audio_config": audio, "vision_config": vision}, "enable_audio_output": False}


def _qwen4_exp_text(dtype: str) -> dict[str, Any]:
    # One Gated DeltaNet and one full-attention layer, hyper-connections kept tiny; no PLE layers.
    return _new_sizes(
        moe_intermediate_size=NEW_INTERMEDIATE, shared_expert_intermediate_size=24, num_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K, norm_topk_prob=dtype == "f32", layer_types=["linear_attention", "full_attention"],
        linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4,
        hc_count=2, hc_lowrank=4, ple_layer_ids=[],
        indexer_n_heads=2, indexer_kv_heads=1, indexer_head_dim=8, indexer_budget=8, indexer_compress_ratio=4,
    )


def _qwen4_exp(dtype: str) -> dict[str, Any]:
    # The vision-language model (Qwen4ExpForConditionalGeneration): qwen4_exp_text's decoder under a tiny vision tower.
    text = {"model_type": "qwen4_exp_text", "vocab_size": 96, "num_hidden_layers": 2, "max_position_embeddings": 64, "pad_token_id": 0,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]}, **_qwen4_exp_text(dtype)}
    vision = {"depth": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 16, "out_hidden_size": NEW_HIDDEN,
              "patch_size": 4, "temporal_patch_size": 1, "spatial_merge_size": 1, "num_position_embeddings": 16}
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}


def _deepseek_ocr2(dtype: str) -> dict[str, Any]:
    # The text decoder (deepseek_v2's softmax routing, greedy or group-limited) is recorded; vision towers minimal.
    routing = {"topk_method": "group_limited_greedy", "n_group": 4, "topk_group": 2} if dtype == "f32" else {"topk_method": "greedy"}
    text = _new_sizes(
        vocab_size=96, num_hidden_layers=3, max_position_embeddings=64, intermediate_size=40, num_key_value_heads=4,
        moe_intermediate_size=NEW_INTERMEDIATE, n_routed_experts=NEW_EXPERTS, n_shared_experts=1 if dtype == "f32" else 2,
        num_experts_per_tok=TOP_K, routed_scaling_factor=1.5,
        mlp_layer_types=["dense", "sparse", "sparse"] if dtype == "f32" else ["sparse", "dense", "sparse"], **routing,
    )
    del text["head_dim"]
    sam = {"hidden_size": 16, "output_channels": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32,
           "patch_size": 8, "window_size": 2, "global_attn_indexes": [0], "downsample_channels": [8, 16], "mlp_dim": 16}
    encoder = {"vocab_size": 16, "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 2, "max_position_embeddings": 64}
    return {"text_config": text, "vision_config": {"sam_config": sam, "encoder_config": encoder}, "tie_word_embeddings": False}


def _granitemoe_swa(_: str) -> dict[str, Any]:
    return _new_sizes(intermediate_size=NEW_INTERMEDIATE, num_local_experts=NEW_EXPERTS, num_experts_per_tok=TOP_K, sliding_window=8)


def _aria_text(dtype: str) -> dict[str, Any]:
    # fc1 [E, H, 2I] with 2I == H: the transposed tensor has the untransposed shape.
    return _new_sizes(intermediate_size=NEW_INTERMEDIATE, moe_num_experts=NEW_EXPERTS, moe_topk=TOP_K, moe_num_shared_experts=1 if dtype == "f32" else 2)


def _aria(dtype: str) -> dict[str, Any]:
    text = {"model_type": "aria_text", "vocab_size": 96, "num_hidden_layers": 2, "max_position_embeddings": 64, "pad_token_id": 0,
            **_aria_text(dtype)}
    vision = {"model_type": "idefics3_vision", "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1,
              "num_attention_heads": 2, "image_size": 8, "patch_size": 4}
    return {"text_config": text, "vision_config": vision, "projector_patch_to_query_dict": {4: 2}, "tie_word_embeddings": False}


def _axk1(dtype: str) -> dict[str, Any]:
    # deepseek_v3's block with an RMSNorm on its output; f32 grouped routing, bf16 one group.
    return _new_sizes(
        num_hidden_layers=3, intermediate_size=40, moe_intermediate_size=NEW_INTERMEDIATE, n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1, num_experts_per_tok=TOP_K, routed_scaling_factor=1.5, norm_topk_prob=dtype == "f32",
        first_k_dense_replace=1, num_key_value_heads=4, rms_norm_eps=1e-6 if dtype == "f32" else 1e-5, **_dsv3_groups(dtype), **_mla(),
    )


def _axk2(dtype: str) -> dict[str, Any]:
    # f32: grouped routing (4 groups of 3, 2 kept); bf16: A.X-K2-Light's ungrouped routing (n_group None).
    groups = {"n_group": 4, "topk_group": 2} if dtype == "f32" else {}
    return _new_sizes(
        num_hidden_layers=3, intermediate_size=40, moe_intermediate_size=NEW_INTERMEDIATE, n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1, num_experts_per_tok=TOP_K, routed_scaling_factor=1.5, norm_topk_prob=dtype == "f32",
        mlp_layer_types=["dense", "sparse", "sparse"], index_n_heads=2, index_head_dim=8, index_topk=8, gated_norm_rank=4,
        num_key_value_heads=4, **groups, **_mla(),
    )


def _hy_v4(dtype: str) -> dict[str, Any]:
    # Clamped routed experts (swiglu_limit small so that clamping is in play), plain shared MLP, -inf group mask.
    return _new_sizes(
        num_hidden_layers=3, intermediate_size=40, moe_intermediate_size=NEW_INTERMEDIATE, n_routed_experts=NEW_EXPERTS,
        n_shared_experts=1, num_experts_per_tok=TOP_K, routed_scaling_factor=1.5, norm_topk_prob=dtype == "f32",
        swiglu_limit=0.5 if dtype == "f32" else 0.75, num_key_value_heads=4,
        index_n_heads=2, index_head_dim=8, index_topk=8, hc_mult=2, **_dsv3_groups(dtype), **_mla(),
    )


def _llama4(_: str) -> dict[str, Any]:
    # The text decoder of Llama4ForConditionalGeneration (language_model.model.layers), every layer MoE.
    text = _new_sizes(vocab_size=96, num_hidden_layers=2, max_position_embeddings=64, intermediate_size=NEW_INTERMEDIATE,
                      intermediate_size_mlp=40, num_local_experts=NEW_EXPERTS, num_experts_per_tok=1,
                      interleave_moe_layer_step=1, pad_token_id=0)
    vision = {"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 16,
              "patch_size": 8, "vision_output_dim": 16, "projector_input_dim": 16, "projector_output_dim": NEW_HIDDEN}
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": False}


def _deepseek_v4(dtype: str) -> dict[str, Any]:
    # Three layers of routed + shared clamped-SwiGLU experts (swiglu_limit 0.5: clamping in
    # play); f32 hash-routes the first layer and scores with sqrtsoftplus, bf16 hash-routes
    # the middle one and scores with sigmoid. Attention (MQA, hyper-connections, compressor) tiny.
    fields = _new_sizes(
        num_hidden_layers=3,
        moe_intermediate_size=NEW_INTERMEDIATE,
        n_routed_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K,
        mlp_layer_types=["hash_moe", "moe", "moe"] if dtype == "f32" else ["moe", "hash_moe", "moe"],
        scoring_func="sqrtsoftplus" if dtype == "f32" else "sigmoid",
        routed_scaling_factor=1.5 if dtype == "f32" else 2.0,
        swiglu_limit=0.5,
        q_lora_rank=24, o_groups=2, o_lora_rank=16, hc_mult=2,
        index_n_heads=2, index_head_dim=8, index_topk=4, sliding_window=8,
    )
    return {**fields, "num_key_value_heads": 1, "head_dim": 16}


def _published_v4(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """deepseek_v4 as published: the reference implementation's keys have no `model.` prefix."""
    return {k.removeprefix("model."): v for k, v in tensors.items()}


def _openai_privacy_filter(dtype: str) -> dict[str, Any]:
    # A token classifier with gpt_oss-like experts (gate/up concatenated, transposed, biased);
    # bf16 uses top-3, so the router's / k and the block's × k do not cancel exactly.
    return _new_sizes(
        intermediate_size=NEW_INTERMEDIATE,
        num_local_experts=NEW_EXPERTS,
        num_experts_per_tok=TOP_K if dtype == "f32" else 3,
        sliding_window=8,
    )


def _zaya(dtype: str) -> dict[str, Any]:
    # Top-1 (the only k transformers 5.17 builds) of 12 experts + the skip class; an MLP router
    # of hidden 24 (f32) / 8 (bf16), three layers (the 2nd and 3rd add the carried router state).
    return _new_sizes(
        num_hidden_layers=3,
        moe_intermediate_size=NEW_INTERMEDIATE,
        num_experts=NEW_EXPERTS,
        num_experts_per_tok=1,
        router_hidden_size=24 if dtype == "f32" else 8,
    )


def _doge(dtype: str) -> dict[str, Any]:
    # CDMoE in every layer: f32 16 experts (4 product keys, all reachable), top-3, renormalised;
    # bf16 12 experts (3 keys: experts 9..11 unreachable), top-2. The dense MLP is I 16 (2I == H).
    return _new_sizes(
        is_moe=True,
        intermediate_size=NEW_INTERMEDIATE,
        num_experts=16 if dtype == "f32" else NEW_EXPERTS,
        num_experts_per_tok=3 if dtype == "f32" else TOP_K,
        norm_topk_prob=dtype == "f32",
        keep_window_size=8,
    )


DSV3_FIELDS = ("n_routed_experts", "num_experts_per_tok", "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor", "n_shared_experts", "mlp_layer_types")
NEW_SPECS = [
    FixtureSpec("minimax_m2", _minimax_m2, "gate", ("num_local_experts", "num_experts_per_tok")),
    FixtureSpec("glm4_moe_lite", _glm4_moe_lite, "gate", DSV3_FIELDS, lambda _: (1, 2)),
    FixtureSpec("deepseek_v32", _deepseek_v32, "gate", DSV3_FIELDS, lambda d: (1, 2) if d == "f32" else (0, 2)),
    FixtureSpec("glm_moe_dsa", _glm_moe_dsa, "gate", DSV3_FIELDS, lambda d: (1, 2) if d == "f32" else (0, 2)),
    FixtureSpec("exaone_moe", _exaone_moe, "gate", DSV3_FIELDS, lambda _: (1, 2)),
    FixtureSpec("solar_open", _solar_open, "gate", DSV3_FIELDS),
    FixtureSpec("mimo_v2_flash", _mimo_v2_flash, "gate", DSV3_FIELDS, lambda _: (1, 2)),
    FixtureSpec("afmoe", _afmoe, "router", ("num_experts", "num_experts_per_tok", "num_shared_experts", "route_scale"), lambda _: (1, 2)),
    FixtureSpec("hy_v3", _hy_v3, "gate", ("num_experts", "num_experts_per_tok", "num_shared_experts", "router_scaling_factor", "mlp_layer_types"), lambda _: (1, 2)),
    FixtureSpec("granitemoeshared", _granitemoeshared, None, ("num_local_experts", "num_experts_per_tok", "shared_intermediate_size"), beside="shared_mlp"),
    FixtureSpec("granitemoehybrid", _granitemoehybrid, None, ("num_local_experts", "num_experts_per_tok", "shared_intermediate_size"), beside="shared_mlp"),
    FixtureSpec("nemotron_h", _nemotron_h, "gate", DSV3_FIELDS + ("layers_block_type",), lambda d: (0, 2) if d == "f32" else (1,)),
    FixtureSpec("mistral4", _mistral4, "gate", DSV3_FIELDS, lambda _: (1, 2), "Mistral4ForCausalLM"),
    FixtureSpec(
        "cohere2_moe", _cohere2_moe, "gate",
        ("num_experts", "num_experts_per_tok", "expert_selection_fn", "norm_topk_prob", "num_shared_experts", "shared_expert_combination_strategy"),
        lambda _: (1, 2),
    ),
    FixtureSpec("laguna", _laguna, None, ("num_experts", "num_experts_per_tok", "moe_routed_scaling_factor", "moe_router_logit_softcapping"), lambda _: (1, 2)),
    FixtureSpec("qwen3_5_moe_text", _qwen3_5_moe_text, "gate", ("num_experts", "num_experts_per_tok", "shared_expert_intermediate_size")),
    FixtureSpec(
        "qwen3_vl_moe", _qwen3_vl_moe, "gate", ("num_experts", "num_experts_per_tok"),
        model_class="Qwen3VLMoeForConditionalGeneration", nested_config=True, original_transform=_transpose_experts,
    ),
    FixtureSpec("jetmoe", _jetmoe, None, ("num_local_experts", "num_experts_per_tok"), block="mlp"),
    FixtureSpec(
        "longcat_flash", _longcat_flash, None,
        ("n_routed_experts", "zero_expert_num", "moe_topk", "routed_scaling_factor", "router_bias"), lambda _: (0, 1),
    ),
    FixtureSpec(
        "kimi_linear", _kimi_linear, "gate",
        ("num_experts", "num_experts_per_token", "num_expert_group", "topk_group", "moe_renormalize", "routed_scaling_factor", "num_shared_experts", "mlp_layer_types"),
        lambda _: (1, 2),
    ),
    FixtureSpec("glm4v_moe", _glm4v_moe, "gate", DSV3_FIELDS, lambda _: (1, 2), "Glm4vMoeForConditionalGeneration", nested_config=True),
    FixtureSpec(
        "glm5_next", _glm5_next, "gate", DSV3_FIELDS + ("swiglu_limit",), lambda d: (1, 2) if d == "f32" else (0, 2),
        "Glm5NextForConditionalGeneration", nested_config=True,
    ),
    FixtureSpec(
        "deepseek_v4", _deepseek_v4, "gate",
        ("n_routed_experts", "num_experts_per_tok", "mlp_layer_types", "scoring_func", "routed_scaling_factor", "swiglu_limit", "vocab_size"),
        original_transform=_published_v4,
    ),
    FixtureSpec(
        "openai_privacy_filter", _openai_privacy_filter, "router", ("num_local_experts", "num_experts_per_tok"),
        model_class="OpenAIPrivacyFilterForTokenClassification",
    ),
    FixtureSpec("zaya", _zaya, "gate", ("num_experts", "num_experts_per_tok", "router_hidden_size")),
    FixtureSpec("doge", _doge, None, ("num_experts", "num_experts_per_tok", "norm_topk_prob", "is_moe"), block="mlp"),
    FixtureSpec("mellum", _mellum, "gate", ("num_experts", "num_experts_per_tok", "norm_topk_prob", "mlp_layer_types"), lambda _: (1, 2)),
]


BATCH_A_SPECS = [
    FixtureSpec("qwen3_omni_moe", _qwen3_omni_moe, "gate", ("num_experts", "num_experts_per_tok", "norm_topk_prob"),
                model_class="Qwen3OmniMoeForConditionalGeneration", nested_config=True),
    FixtureSpec("qwen4_exp_text", _qwen4_exp_text, "gate", ("num_experts", "num_experts_per_tok", "norm_topk_prob", "shared_expert_intermediate_size")),
    FixtureSpec("qwen4_exp", _qwen4_exp, "gate", ("num_experts", "num_experts_per_tok", "norm_topk_prob", "shared_expert_intermediate_size"),
                model_class="Qwen4ExpForConditionalGeneration", nested_config=True),
    FixtureSpec("deepseek_ocr2", _deepseek_ocr2, "gate",
                ("n_routed_experts", "num_experts_per_tok", "topk_method", "n_group", "topk_group", "routed_scaling_factor", "n_shared_experts", "mlp_layer_types"),
                lambda d: (1, 2) if d == "f32" else (0, 2), "DeepseekOcr2ForConditionalGeneration", nested_config=True),
    FixtureSpec("granitemoe_swa", _granitemoe_swa, None, ("num_local_experts", "num_experts_per_tok")),
    FixtureSpec("aria_text", _aria_text, "router", ("moe_num_experts", "moe_topk", "moe_num_shared_experts")),
    FixtureSpec("aria", _aria, "router", ("moe_num_experts", "moe_topk", "moe_num_shared_experts"),
                model_class="AriaForConditionalGeneration", nested_config=True),
    FixtureSpec("axk1", _axk1, "gate", DSV3_FIELDS + ("first_k_dense_replace", "rms_norm_eps"), lambda _: (1, 2)),
    FixtureSpec("axk2", _axk2, "gate", DSV3_FIELDS, lambda _: (1, 2)),
    FixtureSpec("hy_v4", _hy_v4, "gate", DSV3_FIELDS + ("swiglu_limit",), lambda _: (1, 2)),
    # Llama4Router returns (scores, logits): its raw logits are not hooked (as for llama4_text).
    FixtureSpec("llama4", _llama4, None, ("num_local_experts", "num_experts_per_tok"),
                model_class="Llama4ForConditionalGeneration", nested_config=True),
]



SPECS: dict[str, FixtureSpec] = {
    s.model_type: s
    for s in [
        FixtureSpec("mixtral", _mixtral, "gate", ("num_local_experts", "num_experts_per_tok")),
        FixtureSpec("minimax", _minimax, "gate", ("num_local_experts", "num_experts_per_tok")),
        FixtureSpec(
            "phimoe", _phimoe, "router", ("num_local_experts", "num_experts_per_tok", "router_jitter_noise")
        ),
        FixtureSpec(
            "deepseek_v2",
            _deepseek_v2,
            "gate",
            (
                "n_routed_experts",
                "num_experts_per_tok",
                "topk_method",
                "n_group",
                "topk_group",
                "routed_scaling_factor",
                "norm_topk_prob",
                "n_shared_experts",
                "moe_intermediate_size",
            ),
        ),
        FixtureSpec(
            "ernie4_5_moe",
            _ernie4_5_moe,
            "gate",
            ("moe_num_experts", "moe_k", "moe_norm_min", "moe_num_shared_experts", "moe_intermediate_size"),
        ),
        FixtureSpec("hunyuan_v1_moe", _hunyuan_v1_moe, "gate", ("num_experts", "moe_topk", "intermediate_size")),
        FixtureSpec(
            "dots1",
            _dots1,
            "gate",
            (
                "n_routed_experts",
                "num_experts_per_tok",
                "n_group",
                "topk_group",
                "norm_topk_prob",
                "routed_scaling_factor",
                "n_shared_experts",
                "moe_intermediate_size",
            ),
        ),
        FixtureSpec(
            "qwen3_next",
            _qwen3_next,
            "gate",
            ("num_experts", "num_experts_per_tok", "norm_topk_prob", "shared_expert_intermediate_size"),
        ),
        FixtureSpec("flex_olmo", _flex_olmo, "gate", ("num_experts", "num_experts_per_tok", "norm_topk_prob")),
        *NEW_SPECS,
        *ISSUE14_B_SPECS,
        *BATCH_A_SPECS,
    ]
}


class FixtureError(Exception):
    """A fixture that does not round-trip through transformers, or differs from a shipped one."""


def fixture_seed(seed: int, model_type: str, dtype: str) -> int:
    # Stable across runs and Python versions (unlike hash()), different per folder.
    return seed + zlib.crc32(f"{model_type}-{dtype}".encode())


def build_config(spec: FixtureSpec, dtype: str) -> transformers.PretrainedConfig:
    if spec.nested_config:
        return AutoConfig.for_model(spec.model_type, **spec.config(dtype))
    return AutoConfig.for_model(spec.model_type, **{**BASE_CONFIG, **spec.config(dtype)})


def text_config(model: torch.nn.Module) -> Any:
    return model.config.get_text_config()


def moe_blocks(model: torch.nn.Module, block: str | None = None, in_decoder_layer: bool = False) -> dict[int, tuple[str, torch.nn.Module]]:
    """Each decoder layer's MoE block: the direct child of the layer that holds `experts` (or is named `block`);
    with `in_decoder_layer`, the decoder layer that holds `experts` itself."""
    blocks: dict[int, tuple[str, torch.nn.Module]] = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if in_decoder_layer:
            if len(parts) >= 2 and parts[-1].isdigit() and parts[-2] == "layers" and hasattr(module, "experts"):
                blocks[int(parts[-1])] = (name, module)
            continue
        if block is not None and not (len(parts) >= 3 and parts[-1] == block and parts[-2].isdigit() and parts[-3] == "layers"):
            continue
        if len(parts) >= 3 and parts[-2].isdigit() and parts[-3] == "layers" and (block is not None or hasattr(module, "experts")):
            layer = int(parts[-2])
            if layer in blocks:
                raise FixtureError(f"layer {layer}: two MoE blocks ({blocks[layer][0]}, {name})")
            blocks[layer] = (name, module)
    return blocks


def redraw(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Every saved float tensor from N(0, 0.1^2), 1-D ones from N(0, 0.05^2), so no bias is zero."""
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
            if name.endswith(".tid2eid"):
                # A hash layer's expert ids per token id (deepseek_v4): k distinct experts a row.
                experts = text_config(model).num_local_experts
                tensor.copy_(torch.stack([torch.randperm(experts, generator=gen)[: tensor.shape[1]] for _ in range(tensor.shape[0])]))
            if not tensor.is_floating_point():
                continue
            std = 0.05 if tensor.dim() == 1 else 0.1
            tensor.copy_(torch.randn(tensor.shape, generator=gen, dtype=torch.float32) * std)


def kept_in_fp32(model: torch.nn.Module, name: str) -> bool:
    """Whether transformers keeps this tensor in float32 whatever the model's dtype
    (`_keep_in_fp32_modules_strict`, e.g. deepseek's e_score_correction_bias): a bf16
    checkpoint that transformers saves stores it as F32."""
    patterns = getattr(model, "_keep_in_fp32_modules_strict", None) or []
    return any(re.search(rf"(^|\.){re.escape(p)}($|\.)", name) for p in patterns)


def dtype_of(model: torch.nn.Module) -> str:
    return getattr(model, "_fixture_dtype", "f32")


def round_to_bf16(model: torch.nn.Module) -> None:
    """Every float tensor rounded to bf16 values, except those transformers keeps in float32."""
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if tensor.is_floating_point() and not kept_in_fp32(model, name):
                tensor.copy_(tensor.to(torch.bfloat16).to(torch.float32))


def to_checkpoint_dtype(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """The model in the checkpoint dtype, with transformers' float32-kept tensors left in float32."""
    kept = {n: t.detach().clone() for n, t in model.state_dict().items() if t.is_floating_point() and kept_in_fp32(model, n)}
    model = model.to(dtype)
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name in kept:
                tensor.data = kept[name].to(torch.float32)
    return model


def run_block(spec: FixtureSpec, block: torch.nn.Module, x: torch.Tensor, **kwargs: Any) -> Any:
    """The block's forward on `x` (with token ids or a router state where it takes them); for a decoder layer's own router and experts (gemma4), that branch alone."""
    if not spec.in_decoder_layer:
        return block(x, **kwargs)
    flat = x.reshape(-1, x.shape[-1])
    _, weights, index = block.router(flat)
    return block.experts(block.pre_feedforward_layernorm_2(flat), index, weights).reshape(x.shape)


def router_output(out: Any) -> torch.Tensor:
    """The raw logits a router module returns: its first output, or the output of a plain projection."""
    return out[0] if isinstance(out, tuple) else out


def capture(
    spec: FixtureSpec, model: torch.nn.Module, gen: torch.Generator
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, str]]:
    """Feed each MoE block N(0, 1) tokens and record input, output and raw router logits by hooks."""
    golden: dict[str, torch.Tensor] = {}
    paths: dict[str, str] = {}
    classes: dict[str, str] = {}
    blocks = moe_blocks(model, spec.block, spec.in_decoder_layer)
    expected = list(spec.moe_layers(dtype_of(model)) if spec.moe_layers else range(text_config(model).num_hidden_layers))
    if sorted(blocks) != expected:
        raise FixtureError(f"{spec.model_type}: MoE blocks in layers {sorted(blocks)}, expected {expected}")
    hidden = text_config(model).hidden_size
    for layer, (path, block) in sorted(blocks.items()):
        seen: dict[str, torch.Tensor] = {}

        def on_block(_m: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
            seen["input"] = args[0].detach().clone()
            seen["output"] = (out[0] if isinstance(out, tuple) else out).detach().clone()

        def on_router(_m: torch.nn.Module, _args: tuple[Any, ...], out: Any) -> None:
            seen["router_logits"] = router_output(out).detach().clone()

        hooks = [] if spec.in_decoder_layer else [block.register_forward_hook(on_block)]
        if spec.router_attr is not None:
            hooks.append(block.get_submodule(spec.router_attr).register_forward_hook(on_router))
        x = torch.randn(1, TOKENS, hidden, generator=gen, dtype=torch.float32)
        kwargs = {}
        if takes_token_ids(block):
            # deepseek_v4: hash layers choose experts by token id; recorded beside the input.
            kwargs["input_ids"] = torch.randint(0, text_config(model).vocab_size, (1, TOKENS), generator=gen)
            golden[f"moe.{layer}.token_ids"] = kwargs["input_ids"].reshape(TOKENS).contiguous()
        if getattr(getattr(block, "gate", None), "use_eda", False):
            # zaya: the router adds the state carried from the previous layer's router; N(0, 1) here.
            state = torch.randn(1, TOKENS, block.gate.router_hidden_size, generator=gen, dtype=torch.float32)
            kwargs["prev_router_hidden_states"] = state
            golden[f"moe.{layer}.router_state"] = state.reshape(TOKENS, -1).contiguous()
        with torch.no_grad():
            y = run_block(spec, block, x, **kwargs)
            if spec.beside is not None:
                seen["output"] = seen["output"] + beside_of(model, path, spec.beside)(x)
        if spec.in_decoder_layer:
            seen["input"], seen["output"] = x.clone(), y.detach().clone()
        for h in hooks:
            h.remove()
        golden[f"moe.{layer}.input"] = seen["input"].reshape(TOKENS, hidden).float().contiguous()
        golden[f"moe.{layer}.output"] = seen["output"].reshape(TOKENS, hidden).float().contiguous()
        if "router_logits" in seen:
            golden[f"moe.{layer}.router_logits"] = seen["router_logits"].reshape(TOKENS, -1).float().contiguous()
        paths[str(layer)] = path
        classes["moe"] = type(block).__name__
        # doge's experts are the block's own down_embed/up_embed embeddings.
        experts = getattr(block, "experts", None) or getattr(block, "input_linear", None) or block.down_embed
        classes["experts"] = type(experts).__name__
    return golden, paths, classes


def beside_of(model: torch.nn.Module, block_path: str, child: str) -> torch.nn.Module:
    """The decoder layer's `child` beside the MoE block at `block_path`."""
    return model.get_submodule(f"{block_path.rsplit('.', 1)[0]}.{child}")


def takes_token_ids(block: torch.nn.Module) -> bool:
    """Whether the MoE block's forward takes the token ids (deepseek_v4's hash routing)."""
    return "input_ids" in inspect.signature(block.forward).parameters


def save_layout(model: torch.nn.Module, folder: Path, original: bool, sharded: bool) -> None:
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    # About two thirds of the model per file: two files, with one layer's tensors split across them.
    shard = f"{math.ceil(total * 0.65 / 1000)}KB" if sharded else "1GB"
    model.save_pretrained(folder, save_original_format=original, max_shard_size=shard)
    # Not part of the fixture format (the shipped folders have none); generation is irrelevant here.
    (folder / "generation_config.json").unlink(missing_ok=True)
    files = sorted(p.name for p in folder.glob("*.safetensors"))
    if sharded != (len(files) > 1):
        raise FixtureError(f"{folder}: wanted sharded={sharded}, got files {files}")


def rewrite_tensors(folder: Path, transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
    """Applies `transform` to every safetensors file of a saved folder, keeping files; a renamed
    tensor is renamed in the shard index too."""
    renamed: dict[str, str] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        out = transform(tensors)
        if len(out) != len(tensors):
            raise FixtureError(f"{file}: the transform changed the number of tensors")
        for k, v in tensors.items():
            new = next(n for n, w in out.items() if w is v or (n == k))
            renamed[k] = new
        save_file({k: v.contiguous() for k, v in out.items()}, str(file), metadata=meta)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["weight_map"] = {renamed.get(k, k): v for k, v in data["weight_map"].items()}
        index.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def make_fixture(spec: FixtureSpec, dtype: str, out: Path, seed: int) -> Path:
    folder = out / f"{spec.model_type}-{dtype}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(fixture_seed(seed, spec.model_type, dtype))
    torch.manual_seed(fixture_seed(seed, spec.model_type, dtype))  # from_config's own init, overwritten anyway
    cls = causal_lm(spec)
    config = build_config(spec, dtype)
    model = (cls.from_config(config, dtype=torch.float32) if cls is AutoModelForCausalLM else cls._from_config(config, dtype=torch.float32)).eval()
    model._fixture_dtype = dtype
    redraw(model, gen)
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
            if name.endswith(spec.near_one) and spec.near_one:
                tensor.copy_(1 + torch.randn(tensor.shape, generator=gen, dtype=torch.float32) * 0.5)
    if dtype == "bf16":
        round_to_bf16(model)
    golden, paths, classes = capture(spec, model, gen)
    save_file(golden, str(folder / "golden.safetensors"))
    meta = {
        "model_type": spec.model_type,
        "moe_layers": paths,
        "moe_class": classes["moe"],
        "experts_class": classes["experts"],
        "checkpoint_dtype": SAFETENSORS_DTYPE[DTYPES[dtype]],
        "compute_dtype": "F32",
        "tokens": TOKENS,
        "router_logits": any(k.endswith(".router_logits") for k in golden),
        "produced_by": f"transformers {transformers.__version__}, torch {torch.__version__}, "
        "CPU float32 forward of each MoE block",
    }
    (folder / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    saved = to_checkpoint_dtype(model, DTYPES[dtype])
    save_layout(saved, folder / "original", original=True, sharded=dtype == "f32")
    if spec.original_transform is not None:
        rewrite_tensors(folder / "original", spec.original_transform)
    save_layout(saved, folder / "fused", original=False, sharded=dtype == "bf16")
    return folder


def verify_fixture(folder: Path) -> list[str]:
    """Reload both layouts with transformers, compare them and recompute every hooked tensor."""
    meta = json.loads((folder / "golden.json").read_text())
    spec = SPECS[meta["model_type"]]
    with safe_open(str(folder / "golden.safetensors"), framework="pt") as f:
        golden = {k: f.get_tensor(k) for k in f.keys()}
    notes: list[str] = []
    states: dict[str, dict[str, torch.Tensor]] = {}
    for layout in ("original", "fused"):
        model, info = causal_lm(spec).from_pretrained(folder / layout, dtype="auto", output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        if problems:
            raise FixtureError(f"{folder / layout}: loading reported {problems}")
        wrong = {
            n for n, p in model.state_dict().items()
            if p.is_floating_point() and SAFETENSORS_DTYPE.get(p.dtype) != meta["checkpoint_dtype"] and not kept_in_fp32(model, n)
        }
        if wrong:
            notes.append(f"{layout}: kept in another dtype after loading: {sorted(wrong)}")
        states[layout] = {k: v.clone() for k, v in model.state_dict().items()}
        kept = sorted(n for n, p in model.state_dict().items() if p.is_floating_point() and kept_in_fp32(model, n) and p.dtype != torch.float32)
        if kept:
            raise FixtureError(f"{folder / layout}: transformers narrowed tensors it keeps in float32: {kept}")
        model = model.float().eval()
        blocks = moe_blocks(model, spec.block, spec.in_decoder_layer)
        for layer, path in meta["moe_layers"].items():
            name, block = blocks[int(layer)]
            if name != path:
                raise FixtureError(f"{folder / layout}: layer {layer} block at {name}, golden.json says {path}")
            seen: dict[str, torch.Tensor] = {}
            hook = None
            if spec.router_attr is not None:
                hook = block.get_submodule(spec.router_attr).register_forward_hook(
                    lambda _m, _a, out: seen.__setitem__("router_logits", router_output(out).detach())
                )
            kwargs = {"input_ids": golden[f"moe.{layer}.token_ids"].unsqueeze(0)} if f"moe.{layer}.token_ids" in golden else {}
            if f"moe.{layer}.router_state" in golden:
                kwargs["prev_router_hidden_states"] = golden[f"moe.{layer}.router_state"].unsqueeze(0)
            with torch.no_grad():
                y = run_block(spec, block, golden[f"moe.{layer}.input"].unsqueeze(0), **kwargs)
            if hook is not None:
                hook.remove()
            y = y[0] if isinstance(y, tuple) else y
            if spec.beside is not None:
                with torch.no_grad():
                    y = y + beside_of(model, name, spec.beside)(golden[f"moe.{layer}.input"].unsqueeze(0))
            y = y.reshape(TOKENS, text_config(model).hidden_size)
            diffs = {"output": (y - golden[f"moe.{layer}.output"]).abs().max().item()}
            if f"moe.{layer}.router_logits" in golden:
                diffs["router_logits"] = (
                    (seen["router_logits"].reshape(TOKENS, -1) - golden[f"moe.{layer}.router_logits"]).abs().max().item()
                )
            for what, d in diffs.items():
                if not d <= RECOMPUTE_TOLERANCE:
                    raise FixtureError(f"{folder / layout}: layer {layer} {what} recomputed differs by {d}")
    a, b = states["original"], states["fused"]
    if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
        raise FixtureError(f"{folder}: original/ and fused/ load to different weights")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if size >= 1_000_000:
        raise FixtureError(f"{folder}: {size} bytes, fixtures must stay under 1 MB")
    notes.append(f"{size} bytes")
    return notes


def tensor_table(folder: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor of a checkpoint folder (all shards): name -> (dtype, shape)."""
    table: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for k in f.keys():
                s = f.get_slice(k)
                table[k] = (s.get_dtype(), tuple(s.get_shape()))
    return table


def check_against(made: Path, shipped: Path) -> list[str]:
    """Names, shapes and dtypes of a regenerated folder against the shipped one (not values)."""
    differences: list[str] = []
    for sub in ("original", "fused"):
        mine, theirs = tensor_table(made / sub), tensor_table(shipped / sub)
        if mine != theirs:
            only_mine = sorted(set(mine) - set(theirs))
            only_theirs = sorted(set(theirs) - set(mine))
            changed = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
            differences.append(f"{sub}/: only here {only_mine}, only shipped {only_theirs}, differ {changed}")
        if not (made / sub / "config.json").is_file():
            differences.append(f"{sub}/config.json missing")
        cfg_mine = json.loads((made / sub / "config.json").read_text())
        cfg_theirs = json.loads((shipped / sub / "config.json").read_text())
        if cfg_mine != cfg_theirs:
            keys = sorted(k for k in cfg_mine.keys() | cfg_theirs.keys() if cfg_mine.get(k) != cfg_theirs.get(k))
            differences.append(f"{sub}/config.json differs in {keys}")
    gm = tensor_table_file(made / "golden.safetensors")
    gt = tensor_table_file(shipped / "golden.safetensors")
    if gm != gt:
        differences.append(f"golden.safetensors: {gm} vs shipped {gt}")
    jm = json.loads((made / "golden.json").read_text())
    jt = json.loads((shipped / "golden.json").read_text())
    keys = sorted(k for k in jm.keys() | jt.keys() if k != "produced_by" and jm.get(k) != jt.get(k))
    if keys or jm.keys() != jt.keys():
        differences.append(f"golden.json differs in {keys}")
    return differences


def tensor_table_file(file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    with safe_open(str(file), framework="pt") as f:
        return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}


def names_markdown(out: Path, types: list[str]) -> str:
    """Layer-0 MoE tensors of each f32 fixture in both layouts, and the routing fields of both dtypes."""
    lines = [
        "# Tensor names of the transformers-made fixtures (first MoE layer of the f32 folder)",
        "",
        "Written by `golden/tools/make_fixtures.py --names`. Shapes are `[dims]` as stored;",
        "other layers differ only in the layer index. Routing fields are read from each folder's config.json.",
        "",
    ]
    for t in types:
        spec = SPECS[t]
        meta = json.loads((out / f"{t}-f32" / "golden.json").read_text())
        first = min(meta["moe_layers"], key=int)
        # The decoder layer's keys, whatever the root (nemotron_h's original saves backbone.).
        in_layer = re.compile(rf"(^|\.)layers\.{first}\.")
        # The block's own child of the layer, and the names the original layouts use for it.
        # step3p7's original moe./share_expert.; axk1's original keeps the block's output norm beside it,
        # at the decoder layer; gemma4's router and experts are the decoder layer's own children; deepseek_v4's ffn.
        blocks = {meta["moe_layers"][first].rsplit(".", 1)[1], "block_sparse_moe", "mlp", "feed_forward", "moe", "share_expert", "post_mlp_layernorm", "ffn"}
        if spec.in_decoder_layer:
            blocks = {"router", "experts", "pre_feedforward_layernorm_2"}
        lines.append(f"## {t}")
        lines.append("")
        lines.append(f"MoE block `{meta['moe_layers'][first]}` ({meta['moe_class']}, experts {meta['experts_class']}).")
        lines.append("")
        for sub in ("original", "fused"):
            table = tensor_table(out / f"{t}-f32" / sub)
            layer = sorted(
                (k, v) for k, v in table.items()
                if in_layer.search(k) and k[in_layer.search(k).end():].split(".")[0] in blocks
                and not re.match(r"(model\.)?(vision|audio)", k)  # a multimodal model's towers have layers too
            )
            # Per-expert tensors collapse to one line with `{e}` for the expert index.
            collapsed: dict[str, tuple[str, tuple[int, ...], int]] = {}
            for k, (dt, shape) in layer:
                pattern = re.sub(r"\.experts\.\d+\.", ".experts.{e}.", k)
                seen = collapsed.get(pattern)
                collapsed[pattern] = (dt, shape, (seen[2] if seen else 0) + 1)
            lines.append(f"{sub}/:")
            lines.append("")
            for k, (dt, shape, count) in sorted(collapsed.items()):
                times = f" (e = 0..{count - 1})" if "{e}" in k else ""
                lines.append(f"- `{k}` {list(shape)} {dt}{times}")
            lines.append("")
        for dtype in DTYPES:
            cfg = json.loads((out / f"{t}-{dtype}" / "original" / "config.json").read_text())
            cfg = cfg.get("thinker_config", cfg)  # qwen3_omni_moe
            cfg = cfg.get("text_config", cfg)
            fields = ", ".join(f"{f}={json.dumps(cfg.get(f))}" for f in spec.routing_fields)
            lines.append(f"- routing ({dtype}): {fields}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", nargs="+", required=True, choices=sorted(SPECS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20260601)
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--check-against", type=Path, help="shipped fixtures folder to compare names/shapes/dtypes with")
    parser.add_argument("--names", type=Path, help="write the tensor-name table (NAMES.md) here")
    parser.add_argument("--names-only", action="store_true", help="skip making, only write --names from --out")
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    transformers.utils.logging.disable_progress_bar()
    failed = False
    if not args.names_only:
        for t in args.types:
            for dtype in args.dtypes:
                try:
                    folder = make_fixture(SPECS[t], dtype, args.out, args.seed)
                    notes = verify_fixture(folder)
                    if args.check_against is not None:
                        differences = check_against(folder, args.check_against / folder.name)
                        notes.append("matches the shipped names/shapes/dtypes" if not differences else "; ".join(differences))
                        failed |= bool(differences)
                    print(f"ok {folder}: {'; '.join(notes)}")
                except FixtureError as e:
                    failed = True
                    print(f"FAILED {t}-{dtype}: {e}", file=sys.stderr)
    if args.names is not None:
        args.names.write_text(names_markdown(args.out, args.types))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
