"""A loader under test for the moe-conformance protocol, built on Hugging Face transformers.

It lets transformers do all the loading (`from_pretrained(dtype="auto")`, with the model type's
own on-disk conversions), then reads each MoE block's in-memory parameters and writes the
canonical tensors of spec/loader-protocol.md §1 for one TP/EP rank. The harness therefore
checks transformers' loading: whatever transformers gets wrong, this loader gets wrong.

It is written on the Python loader kit (kits/python/moe_conformance_kit.py): one function,
`load(checkpoint_dir, request)`, returns one rank's tensors; the kit serves both protocol modes
from this file. Run it under the conformance checker (from the repository root, after the
set-up in golden/tools/requirements.txt), as a worker (one Python process per job, spec §7):

    npx moe-conformance check --loader ".venv/bin/python examples/python/hf_transformers_loader.py" --worker

or as a command (one process per rank, spec §2), or by hand with the protocol's arguments:

    .venv/bin/python examples/python/hf_transformers_loader.py --checkpoint golden/hf/mixtral-f32/original \
        --out /tmp/rank.safetensors --tp-size 2 --tp-rank 0 --ep-size 2 --ep-rank 1 --ep-placement linear

Exit status (command mode): 0 written; 1 the checkpoint or the request cannot be loaded
correctly (reason on stderr, nothing written); 2 bad command line. In worker mode the same
refusal is a `refused` answer with the reason.

In-memory layouts read here (transformers 5.17), per MoE block:
- most types: `experts.gate_up_proj` [E, 2I, H] (gate rows first), `experts.down_proj` [E, H, I];
- gpt_oss: `experts.gate_up_proj` [E, H, 2I] with gate/up interleaved on the last axis, biases
  `gate_up_proj_bias` [E, 2I] interleaved the same way and `down_proj_bias` [E, H]; `down_proj` [E, I, H];
- llama4_text: `experts.gate_up_proj` [E, H, 2I] (gate half first), `down_proj` [E, I, H];
- dbrx: `experts.mlp.w1` / `v1` [E*I, H] gate / up, `w2` [E*I, H] the down projection transposed.
- granitemoeshared, granitemoehybrid: the shared expert is the decoder layer's `shared_mlp` beside
  the block (`input_linear` [2*Is, H] gate rows then up rows, `output_linear` [H, Is]).
The layout is chosen by model type, never guessed from shapes (transformers issue 47031).
A checkpoint storing a layer's experts in two layouts at once is refused (transformers would keep
one copy silently). The model types this example does not serve are declared (NOT_SERVED below,
each with the limit that keeps it out): the harness skips their cases as "not declared"; asked
anyway, the loader refuses them with that reason.
Every parameter and buffer of the block must be consumed; an unknown one is an error, so a
tensor is never silently dropped.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors import safe_open

# The kit ships in the package's kits/python/ (two folders up from here); an installed copy works too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kits" / "python"))
import moe_conformance_kit as kit  # noqa: E402

NAME = "hf_transformers_loader"
# What the harness is told (spec §7.3): transformers loads float checkpoints of every model type
# here; FP8/MXFP4 scales are not placed by this example.
# Every model type of the registry (harness/layouts/types/, 62 with the aliases aria, llama4, minimax,
# qwen4_exp), as of transformers 5.17.
KNOWN_TYPES = (
    "afmoe aria aria_text axk1 axk2 cohere2_moe dbrx deepseek_ocr2 deepseek_v2 deepseek_v3 deepseek_v32 deepseek_v4 "
    "doge dots1 ernie4_5_moe exaone_moe flex_olmo gemma4_text glm4_moe glm4_moe_lite glm4v_moe glm5_next glm_moe_dsa "
    "gpt_oss granitemoe granitemoe_swa granitemoehybrid granitemoeshared hunyuan_v1_moe hy_v3 hy_v4 inkling_text jamba "
    "jetmoe kimi_linear laguna lfm2_moe llama4 llama4_text longcat_flash mellum mimo_v2_flash minimax minimax_m2 "
    "minimax_m3_vl mistral4 mixtral nemotron_h olmoe openai_privacy_filter phimoe qwen2_moe qwen3_5_moe_text qwen3_moe "
    "qwen3_next qwen3_omni_moe qwen3_vl_moe qwen4_exp qwen4_exp_text solar_open step3p7 zaya"
).split()
# The model types this example does not serve, each with the real limit of the example (or of
# transformers under it) that keeps it out. They are left out of the declared capabilities, so the
# harness reports their cases as "skip: not declared"; asked anyway (a command without
# --capabilities), the loader refuses them with this reason. Removing one is the way to work on it.
NOT_SERVED = {
    # Canonical tensors (spec/loader-protocol.md §1 extensions) this example does not write yet:
    "nemotron_h": "non-gated experts (up_proj only, relu2) and the latent fc1/fc2 projections are not read",
    "doge": "single-neuron experts (down_embed/up_embed) and the product-key router [2K, H] are not read",
    "longcat_flash": "zero-compute experts: router.classifier has E+Z rows and a dead bias; not read",
    "gemma4_text": "the MoE branch is the decoder layer's router/experts (no block module); router.input_scale, "
    "router.expert_scale and expert_input_norm are not read",
    "inkling_text": "S router-weighted shared experts (router [E+S, H], global_scale) are not read",
    "deepseek_v4": "hash-routed layers (router.tid2eid) are not read, and transformers refuses the tiny config's sizes",
    "zaya": "the MLP router (router.down/norm/fc1/fc2/state_scale) is not read",
    "jetmoe": "its attention experts (MoA) are taken for an MoE block, and the block output bias is not read",
    "aria_text": "the experts' fc1/fc2 layout is not read",
    "aria": "the experts' fc1/fc2 layout is not read, and transformers refuses the tiny vision config",
    "openai_privacy_filter": "its expert biases' layout is not read",
    "minimax_m3_vl": "its shared-expert names and its gate.gate correction bias are not read",
    # Limits of the tiny non-MoE config this example builds around an MoE-only checkpoint, or of transformers:
    "qwen3_omni_moe": "transformers has no AutoModel class for its config (the thinker is nested)",
    "glm4v_moe": "transformers cannot build the tiny config (rope: ZeroDivisionError)",
    "deepseek_ocr2": "transformers' config validator refuses the tiny attention sizes",
    "qwen3_vl_moe": "transformers cannot build the tiny config for some drawn sizes (rope: ZeroDivisionError)",
    "step3p7": "building the model takes longer than the harness's time limit",
}
assert set(NOT_SERVED) <= set(KNOWN_TYPES)
CAPABILITIES = {"modelTypes": [t for t in KNOWN_TYPES if t not in NOT_SERVED], "dtypes": ["f32", "f16", "bf16"], "forms": []}

TRANSPOSED_INTERLEAVED = {"gpt_oss"}
TRANSPOSED_CONCATENATED = {"llama4_text", "llama4"}
FLATTENED = {"dbrx"}
# In-memory names (relative to the MoE block) of the tensors around the experts.
ROUTER_WEIGHT = ("gate.weight", "router.weight", "gate.wg.weight", "router.layer.weight", "router.gate.weight")
ROUTER_BIAS = ("router.bias",)
CORRECTION_BIAS = (
    "gate.e_score_correction_bias", "gate.moe_statics.e_score_correction_bias", "expert_bias", "e_score_correction_bias",
)
OUTPUT_NORM = ("post_mlp_layernorm.weight",)  # axk1 (spec §1, block output norm)
SHARED_PREFIXES = ("shared_experts.", "shared_expert.", "shared_mlp.")
SHARED_GATE = ("shared_expert_gate.weight",)
SAFETENSORS_TO_TORCH = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


class LoaderError(Exception):
    """The checkpoint or the request cannot be turned into correct canonical tensors."""


Request = kit.Request


def check_request(req: Request) -> None:
    if req.tp_size < 1 or not 0 <= req.tp_rank < req.tp_size:
        raise LoaderError(f"TP rank {req.tp_rank} of size {req.tp_size} is not a rank")
    if req.ep_size < 1 or not 0 <= req.ep_rank < req.ep_size:
        raise LoaderError(f"EP rank {req.ep_rank} of size {req.ep_size} is not a rank")


def expert_ids(num_experts: int, req: Request) -> list[int]:
    """Global ids held by EP rank q, in slot order (spec §1, Expert placement)."""
    p, q = req.ep_size, req.ep_rank
    if req.ep_placement == "round_robin":
        return list(range(q, num_experts, p))
    base, rem = divmod(num_experts, p)
    start = q * base + min(q, rem)
    return list(range(start, start + base + (1 if q < rem else 0)))


def rows_of_rank(size: int, req: Request, what: str) -> slice:
    if size % req.tp_size != 0:
        raise LoaderError(f"{what} intermediate size {size} is not divisible by TP size {req.tp_size}")
    part = size // req.tp_size
    return slice(req.tp_rank * part, (req.tp_rank + 1) * part)


def disk_tensors(checkpoint: Path) -> dict[str, torch.dtype | None]:
    """Every stored tensor's name and dtype, so tensors transformers keeps in f32 are written back as stored."""
    tensors: dict[str, torch.dtype | None] = {}
    for file in sorted(checkpoint.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                tensors[name] = SAFETENSORS_TO_TORCH.get(f.get_slice(name).get_dtype())
    return tensors


def check_no_second_copy(stored: dict[str, torch.dtype | None]) -> None:
    """Refuse a checkpoint that stores a decoder layer's experts both in an original layout (per expert,
    `experts.N.`, or granite's stacked `block_sparse_moe.input_linear`) and
    fused (`experts.gate_up_proj` / `experts.down_proj`, possibly under the block's other name, e.g.
    `mlp.` beside `block_sparse_moe.`): transformers loads both into one parameter and silently
    keeps one of them, so which weights the model holds would be a guess."""
    layer = re.compile(r"^(.*?(?:layers|blocks)\.\d+)\.")

    def layers_of(pattern: str) -> dict[str, str]:
        return {m.group(1): name for name in stored if re.search(pattern, name) and (m := layer.match(name))}

    # Original-layout expert names: one by one, or granite's stacked block_sparse_moe.input_linear/output_linear.
    per_expert = layers_of(r"\.experts\.\d+\.|\.block_sparse_moe\.(input_linear|output_linear)\.weight$")
    for key, name in layers_of(r"\.experts\.(gate_up_proj|down_proj)$").items():
        if key in per_expert:
            raise LoaderError(f"{name}: the same layer's experts are also stored one by one ({per_expert[key]}, ...)")


def is_moe_only(stored: dict[str, torch.dtype | None]) -> bool:
    """A checkpoint of MoE blocks alone (what the conformance generator writes): no embeddings, no head."""
    # Whole names: doge's experts are `down_embed`/`up_embed`, which are not embeddings.
    return not any("embed_tokens" in name or "lm_head" in name or ".wte." in name or "word_embeddings" in name for name in stored)


# Sizes of the layers around the MoE blocks, for an MoE-only checkpoint (see load_model).
SMALL_NON_MOE = {
    "num_attention_heads": 1, "num_key_value_heads": 1, "n_heads": 1, "head_dim": 2, "vocab_size": 2,
    "pad_token_id": None, "q_lora_rank": 2, "kv_lora_rank": 2, "qk_rope_head_dim": 2, "qk_nope_head_dim": 2,
    "v_head_dim": 2, "linear_num_key_heads": 1, "linear_num_value_heads": 1, "linear_key_head_dim": 2,
    "linear_value_head_dim": 2, "mamba_d_state": 2, "mamba_expand": 1, "mamba_n_heads": 1,
}


def small_config(checkpoint: Path):
    """The checkpoint's config with tiny layers around the MoE blocks, so that transformers can
    build the model of an MoE-only checkpoint: those layers' weights are not in the files (nor
    in the canonical form); every MoE field of config.json is left as written."""
    from transformers import CONFIG_MAPPING

    written = json.loads((checkpoint / "config.json").read_text())
    model_type = written.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise LoaderError(f"{checkpoint}/config.json: model_type {model_type!r} is not one transformers knows")
    declared = CONFIG_MAPPING[model_type]
    # Merged before the config is built: its validators check attention sizes against hidden_size.
    config = declared.from_dict({**written, **{k: v for k, v in SMALL_NON_MOE.items() if hasattr(declared, k)}})
    if getattr(config, "attn_config", None) is not None and not hasattr(config.attn_config, "rope_theta"):
        config.attn_config.rope_theta = 10000.0  # dbrx reads it at build time, with no default
    if hasattr(config, "layer_types") and config.layer_types is None:  # lfm2_moe indexes it at build time
        config.layer_types = ["full_attention"] * config.num_hidden_layers
    return config


def load_model(checkpoint: Path, stored: dict[str, torch.dtype | None]) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    if not (checkpoint / "config.json").is_file():
        raise LoaderError(f"{checkpoint}: no config.json")
    moe_only = is_moe_only(stored)
    try:
        config = small_config(checkpoint) if moe_only else AutoConfig.from_pretrained(checkpoint)
        # Multimodal types (qwen3_vl_moe, glm4v_moe, ...) have no causal-LM class: their base model holds the text layers.
        auto = AutoModelForCausalLM if type(config) in AutoModelForCausalLM._model_mapping else AutoModel
        model, info = auto.from_pretrained(checkpoint, config=config, dtype="auto", output_loading_info=True)
    except LoaderError:
        raise
    except Exception as e:  # transformers' own refusal (shape mismatch, missing shard, bad header, ...)
        raise LoaderError(f"transformers refused {checkpoint}: {type(e).__name__}: {e}") from e
    # from_pretrained initialises missing weights randomly and only warns: that is a failure here,
    # except, in an MoE-only checkpoint, for weights outside the MoE blocks or of zero size.
    problems = {k: v for k, v in info.items() if v and k != "missing_keys"}
    missing = set(info.get("missing_keys") or ())
    if moe_only:
        blocks = tuple(p + "." for _, path, block in moe_blocks(model) for p in (path, *sibling_shared(model, path, block)))
        sizes = dict(model.state_dict())
        missing = {k for k in missing if k.startswith(blocks) and (k not in sizes or sizes[k].numel() > 0)}
    if missing:
        problems["missing_keys"] = sorted(missing)
    if problems:
        raise LoaderError(f"transformers loaded {checkpoint} incompletely: {problems}")
    return model


def moe_blocks(model: torch.nn.Module) -> list[tuple[int, str, torch.nn.Module]]:
    """(layer index as in the key names, module path, block) for each child of a decoder layer holding `experts`."""
    found = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if len(parts) >= 3 and parts[-2].isdigit() and parts[-3] in ("layers", "blocks") and hasattr(module, "experts"):
            found.append((int(parts[-2]), name, module))
    if not found:
        raise LoaderError(f"{type(model).__name__}: no MoE block found")
    return sorted(found)


def sibling_shared(model: torch.nn.Module, path: str, block: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The shared MLP a decoder layer holds beside its MoE block (granitemoeshared, granitemoehybrid:
    `shared_mlp`, with `input_linear` [2*Is, H] gate rows then up rows and `output_linear` [H, Is]),
    by module path; empty where the block holds its own shared expert or there is none."""
    parent_path = path.rsplit(".", 1)[0]
    sibling = getattr(model.get_submodule(parent_path), "shared_mlp", None)
    if sibling is None or sibling is block or hasattr(block, "shared_mlp"):
        return {}
    return {f"{parent_path}.shared_mlp": sibling}


def split_experts(model_type: str, params: dict[str, torch.Tensor], num_experts: int) -> dict[str, torch.Tensor]:
    """Per-model-type in-memory expert layout -> gate [E,I,H], up [E,I,H], down [E,H,I] (+ biases)."""
    take = params.pop
    out: dict[str, torch.Tensor] = {}
    if model_type in FLATTENED:
        w1, v1, w2 = take("experts.mlp.w1"), take("experts.mlp.v1"), take("experts.mlp.w2")
        if w1.shape[0] % num_experts != 0:
            raise LoaderError(f"dbrx w1 {list(w1.shape)} does not split into {num_experts} experts")
        inter = w1.shape[0] // num_experts
        out["gate"] = w1.reshape(num_experts, inter, -1)
        out["up"] = v1.reshape(num_experts, inter, -1)
        out["down"] = w2.reshape(num_experts, inter, -1).transpose(1, 2)
    elif model_type in TRANSPOSED_INTERLEAVED or model_type in TRANSPOSED_CONCATENATED:
        gu, down = take("experts.gate_up_proj"), take("experts.down_proj")
        if model_type in TRANSPOSED_INTERLEAVED:
            gate, up = gu[..., 0::2], gu[..., 1::2]
        else:
            gate, up = gu.chunk(2, dim=-1)
        out["gate"], out["up"], out["down"] = gate.transpose(1, 2), up.transpose(1, 2), down.transpose(1, 2)
        if "experts.gate_up_proj_bias" in params:
            gub = take("experts.gate_up_proj_bias")
            out["gate_bias"], out["up_bias"] = (gub[..., 0::2], gub[..., 1::2]) if model_type in TRANSPOSED_INTERLEAVED else gub.chunk(2, dim=-1)
        if "experts.down_proj_bias" in params:
            out["down_bias"] = take("experts.down_proj_bias")
    else:
        gu, down = take("experts.gate_up_proj"), take("experts.down_proj")
        gate, up = gu.chunk(2, dim=1)
        out["gate"], out["up"], out["down"] = gate, up, down
    if out["gate"].shape[0] != num_experts or out["down"].shape[0] != num_experts:
        raise LoaderError(f"experts tensors hold {out['gate'].shape[0]} experts, the router has {num_experts}")
    return out


# Stored names of a tensor that transformers renames on loading (hy_v3's original `expert_bias`).
STORED_NAMES = {"e_score_correction_bias": ("expert_bias",)}


def stored_dtype_renamed(name: str, on_disk: dict[str, torch.dtype]) -> torch.dtype | None:
    """The stored dtype of a tensor transformers renamed on loading (exaone_moe, glm5_next store
    `mlp.e_score_correction_bias`, loaded as `mlp.gate.e_score_correction_bias`; hy_v3 `mlp.expert_bias`): the one stored tensor of
    the same decoder layer with the same distinctive last name; None where there is none, an error where several."""
    last = name.rsplit(".", 1)[-1]
    if last in ("weight", "bias") or layer_key(name) is None:  # not distinctive: the caller's default applies
        return None
    lasts = {last, *STORED_NAMES.get(last, ())}
    found = [n for n in on_disk if n.rsplit(".", 1)[-1] in lasts and layer_key(n) == layer_key(name)]
    if len(found) > 1:
        raise LoaderError(f"{name}: several stored tensors could be it: {sorted(found)}")
    return on_disk[found[0]] if found else None


def layer_key(name: str) -> str | None:
    """`layers.L` / `blocks.L` of a name, without the prefix around it (model., language_model., ...)."""
    m = re.search(r"(?:layers|blocks)\.\d+(?=\.)", name)
    return m.group(0) if m else None


def take_one(params: dict[str, torch.Tensor], names: tuple[str, ...]) -> tuple[str, torch.Tensor] | None:
    present = [n for n in names if n in params]
    if len(present) > 1:
        raise LoaderError(f"ambiguous MoE block: both {present}")
    return (present[0], params.pop(present[0])) if present else None


def canonical_layer(
    model_type: str, layer: int, path: str, block: torch.nn.Module, req: Request, on_disk: dict[str, torch.dtype],
    siblings: dict[str, torch.nn.Module],
) -> dict[str, torch.Tensor]:
    params = {n: t.detach() for n, t in list(block.named_parameters()) + list(block.named_buffers())}
    full_names = {n: f"{path}.{n}" for n in params}
    for sib_path, sibling in siblings.items():  # read as if the block held it, under its own full names
        for n, t in list(sibling.named_parameters()) + list(sibling.named_buffers()):
            params["shared_mlp." + n] = t.detach()
            full_names["shared_mlp." + n] = f"{sib_path}.{n}"
    router = take_one(params, ROUTER_WEIGHT)
    if router is None:
        raise LoaderError(f"{path}: no router weight among {sorted(params)}")
    num_experts = router[1].shape[0]
    if req.ep_size > num_experts:  # spec §1: an EP rank with no expert is an invalid request
        raise LoaderError(f"EP size {req.ep_size} is larger than the {num_experts} experts")
    experts = split_experts(model_type, params, num_experts)
    ids = expert_ids(num_experts, req)
    index = torch.tensor(ids, dtype=torch.long)
    inter = experts["gate"].shape[1]
    rows = rows_of_rank(inter, req, "expert")
    expert_dtype = experts["gate"].dtype
    pre = f"layers.{layer}."
    out: dict[str, torch.Tensor] = {pre + "experts.ids": torch.tensor(ids, dtype=torch.int32)}
    out[pre + "experts.w13"] = torch.cat([experts["gate"][index, rows], experts["up"][index, rows]], dim=1)
    out[pre + "experts.w2"] = experts["down"][index][:, :, rows]
    if "gate_bias" in experts:
        out[pre + "experts.w13_bias"] = torch.cat([experts["gate_bias"][index, rows], experts["up_bias"][index, rows]], dim=1)
    if "down_bias" in experts:
        out[pre + "experts.w2_bias"] = experts["down_bias"][index]

    def as_stored(name: str, t: torch.Tensor) -> torch.Tensor:
        # Back to the on-disk dtype where transformers upcast (e.g. routers kept in f32); must be exact.
        target = on_disk.get(full_names[name]) or stored_dtype_renamed(full_names[name], on_disk) or expert_dtype
        cast = t.to(target)
        if not torch.equal(cast.to(t.dtype), t):
            raise LoaderError(f"{full_names[name]}: in-memory {t.dtype} values do not fit the stored {target}")
        return cast

    out[pre + "router.weight"] = as_stored(router[0], router[1])
    bias = take_one(params, ROUTER_BIAS)
    if bias is not None:
        out[pre + "router.bias"] = as_stored(*bias)
    correction = take_one(params, CORRECTION_BIAS)
    if correction is not None:
        out[pre + "router.correction_bias"] = as_stored(*correction).reshape(num_experts)
    shared_names = [n for n in params if n.startswith(SHARED_PREFIXES)]
    if shared_names and all(params[n].numel() == 0 for n in shared_names):
        for n in shared_names:  # Is = 0 (n_shared_experts 0): transformers builds empty layers, the model has none
            del params[n]
    elif shared_names:
        prefixes = {n.split(".")[0] for n in shared_names}
        if len(prefixes) != 1:
            raise LoaderError(f"{path}: several shared experts {sorted(prefixes)}")
        sp = prefixes.pop() + "."
        if sp + "input_linear.weight" in params:  # granite's shared_mlp: gate rows then up rows in one tensor
            params[sp + "gate_proj.weight"], params[sp + "up_proj.weight"] = params.pop(sp + "input_linear.weight").chunk(2, dim=0)
            params[sp + "down_proj.weight"] = params.pop(sp + "output_linear.weight")
            for k in ("gate_proj.weight", "up_proj.weight", "down_proj.weight"):
                full_names[sp + k] = full_names[sp + ("output_linear.weight" if k.startswith("down") else "input_linear.weight")]
        sg, su, sd = (params.pop(sp + k) for k in ("gate_proj.weight", "up_proj.weight", "down_proj.weight"))
        srows = rows_of_rank(sg.shape[0], req, "shared-expert")
        out[pre + "shared.w13"] = torch.cat([as_stored(sp + "gate_proj.weight", sg)[srows], as_stored(sp + "up_proj.weight", su)[srows]], dim=0)
        out[pre + "shared.w2"] = as_stored(sp + "down_proj.weight", sd)[:, srows]
    output_norm = take_one(params, OUTPUT_NORM)
    if output_norm is not None:
        out[pre + "output_norm"] = as_stored(*output_norm)
    shared_gate = take_one(params, SHARED_GATE)
    if shared_gate is not None:
        out[pre + "shared.gate"] = as_stored(*shared_gate)
    if params:
        raise LoaderError(f"{path}: tensors this loader does not know how to place: {sorted(params)}")
    return {k: v.contiguous() for k, v in out.items()}


@kit.per_request
def read_checkpoint(checkpoint: Path) -> tuple[torch.nn.Module, dict[str, torch.dtype]]:
    """The model as transformers loads it, and the stored dtypes: read once per request, whatever the ranks asked."""
    stored = disk_tensors(checkpoint)
    check_no_second_copy(stored)
    model = load_model(checkpoint, stored)
    return model, {name: dt for name, dt in stored.items() if dt is not None}


def load(checkpoint_dir: str, req: Request) -> dict[str, torch.Tensor]:
    """One rank's canonical tensors (spec §1); a LoaderError (or any exception) is a refusal with its message."""
    check_request(req)
    model_type = json.loads((Path(checkpoint_dir) / "config.json").read_text()).get("model_type") if (Path(checkpoint_dir) / "config.json").is_file() else None
    if model_type in NOT_SERVED:
        raise LoaderError(f"model type {model_type} is not served by this example: {NOT_SERVED[model_type]}")
    model, on_disk = read_checkpoint(Path(checkpoint_dir))
    model_type = model.config.model_type
    tensors: dict[str, torch.Tensor] = {}
    for layer, path, block in moe_blocks(model):
        tensors.update(canonical_layer(model_type, layer, path, block, req, on_disk, sibling_shared(model, path, block)))
    return tensors


def run(argv: list[str]) -> int:
    """Command mode (spec §2) in process: the exit status (examples/python/check_hf_loader.py calls this)."""
    return kit.serve_command(load, argv, NAME)


if __name__ == "__main__":
    kit.main(load, name=NAME, version=f"1 (transformers {version('transformers')}, torch {torch.__version__})", capabilities=CAPABILITIES)
