"""Build every configuration the harness's generators draw with transformers, and check that
the MoE module transformers builds is the one the layout registry describes.

The property (issue 18): the generators never produce a configuration that the model type's
reference implementation cannot build or builds as something else (n_shared_experts 0 in the
deepseek family makes a zero-width shared module; jamba with one expert is a dense MLP).

    node --import tsx properties/export-generated-configs.ts /tmp/generated-configs.json
    .venv/bin/python golden/tools/check_generated_configs.py /tmp/generated-configs.json \
        --record golden/generated-configs.json

For each exported config: build the model (AutoConfig.for_model + AutoModelForCausalLM, tiny
attention added), save it in the original and the fused (v5) layout, and compare the tensors
saved under each MoE module (names and shapes) with the ones the harness's writer produces
for that config. Counterexamples (configs the registry's constraints exclude) must differ.
The record holds, per config, its id, fingerprint and verdict; properties/generated-configs.test.ts
checks it without Python (same configs as the generators draw today, every one built as the
registry says, every counterexample rejected). Exit 1 if any config fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors import safe_open
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText, AutoModelForTokenClassification

sys.path.insert(0, str(Path(__file__).parent))
from make_fixtures import BASE_CONFIG, SPECS  # noqa: E402

# Tiny attention whatever the hidden size (the generators draw H from 4 to 1040).
ATTENTION = {"num_attention_heads": 1, "num_key_value_heads": 1, "head_dim": 8}


def extras(model_type: str, layers: int) -> dict[str, Any]:
    """Non-MoE fields a tiny model of this type needs to build (its MoE fields come from the harness)."""
    if model_type == "minimax":
        return {"layer_types": ["full_attention"] * layers, "block_size": 16}
    if model_type == "qwen3_next":
        return {
            "layer_types": (["linear_attention", "full_attention"] * layers)[:layers],
            "linear_conv_kernel_dim": 4,
            "linear_key_head_dim": 8,
            "linear_value_head_dim": 8,
            "linear_num_key_heads": 1,
            "linear_num_value_heads": 1,
        }
    if model_type in ("deepseek_v2", "deepseek_v3"):
        return {"kv_lora_rank": 16, "q_lora_rank": 32, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8}
    if model_type == "lfm2_moe":
        return {"layer_types": ["full_attention"] * layers, "intermediate_size": 8}
    if model_type == "jamba":
        return {"use_mamba_kernels": False, "attn_layer_period": 1, "attn_layer_offset": 0}
    if model_type == "granitemoehybrid":
        # Attention layers only; the mamba sizes are validated anyway (n_heads must divide expand * H).
        return {"layer_types": ["attention"] * layers, "mamba_n_heads": 1, "mamba_n_groups": 1}
    if model_type == "dots1":
        return {"sliding_window": None}
    if model_type == "gemma4_text":
        # No per-layer input embeddings (262144 x 256 per layer by default), tiny global attention.
        return {"hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 96, "global_head_dim": 8, "intermediate_size": 8}
    if model_type == "inkling_text":
        return {"swa_num_attention_heads": 1, "swa_num_key_value_heads": 1, "swa_head_dim": 8, "intermediate_size": 8}
    if model_type == "qwen4_exp_text":
        return {"layer_types": ["linear_attention"] * layers, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 8,
                "linear_value_head_dim": 8, "linear_num_key_heads": 1, "linear_num_value_heads": 1, "hc_count": 2, "hc_lowrank": 4}
    if model_type == "axk1":
        return {"kv_lora_rank": 16, "q_lora_rank": 24, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8}
    if model_type in ("axk2", "hy_v4"):
        return {"kv_lora_rank": 16, "q_lora_rank": 24, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
                "index_n_heads": 1, "index_head_dim": 8, "index_topk": 8, **({"hc_mult": 2} if model_type == "hy_v4" else {"gated_norm_rank": 4})}
    if model_type == "deepseek_v4":
        return {"head_dim": 16, "q_lora_rank": 8, "o_groups": 1, "o_lora_rank": 8, "hc_mult": 2, "index_n_heads": 1, "index_head_dim": 8, "index_topk": 4, "sliding_window": 8}
    if model_type == "dbrx":
        return {"n_heads": 1, "attn_config": {"kv_n_heads": 1, "rope_theta": 10000.0}, "max_seq_len": 64}
    return {}


def build_model(config: transformers.PretrainedConfig) -> torch.nn.Module:
    """The model as its checkpoints are saved: the fixture's class where it names one (llama4,
    whose causal-LM auto mapping builds the text model alone; openai_privacy_filter's token
    classifier), else a causal LM, else an image-text-to-text model (MoE decoders inside a VL
    model), else a token classifier, else a *ForCausalLM class the auto maps lack, else the base model."""
    spec = SPECS.get(config.model_type)
    if spec is not None and spec.model_class is not None:
        return getattr(transformers, spec.model_class)._from_config(config)
    first: Exception | None = None
    # A token classifier (openai_privacy_filter) is saved with its model. prefix, as published.
    for auto in (AutoModelForCausalLM, AutoModelForImageTextToText, AutoModelForTokenClassification):
        try:
            return auto.from_config(config)
        except ValueError as e:  # no mapping for this config class
            first = first or e
    for name in dir(transformers):
        cls = getattr(transformers, name, None) if name.endswith("ForCausalLM") else None
        if cls is not None and getattr(cls, "config_class", None) is type(config):
            return cls(config)
    try:
        return AutoModel.from_config(config)
    except ValueError:
        raise first from None


def saved_tables(model: torch.nn.Module, folder: Path, original: bool, transform: Any = None) -> dict[str, list[int]]:
    """Names and shapes of what transformers saves; `transform`: make_fixtures' rewrite of the
    original layout for a type whose published form transformers reads but does not write."""
    model.save_pretrained(folder, save_original_format=original)
    tensors: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for name in st.keys():
                tensors[name] = st.get_tensor(name) if transform else st.get_slice(name).get_shape()
    if transform:
        return {k: list(v.shape) for k, v in transform(tensors).items()}
    return {k: list(v) for k, v in tensors.items()}


def fields_of_nested(model_type: str, base: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """A config with text_config: the fixture's tiny one, the text sizes the harness's; the
    vision (and audio) towers project to that hidden size."""
    text_base = base.get("text_config", {})
    layers = int(cfg.get("text_config", {}).get("num_hidden_layers", text_base.get("num_hidden_layers", 1)))
    # The text decoder's own tiny extras (qwen4_exp: qwen4_exp_text's layer types for this many layers).
    text = {**text_base, **ATTENTION, **extras(str(text_base.get("model_type", "")), layers), **cfg.get("text_config", {})}
    if model_type == "deepseek_ocr2":
        text.pop("head_dim", None)  # derived from hidden_size / num_attention_heads
    fields = {**base, **{k: v for k, v in cfg.items() if k != "text_config"}, "text_config": text}
    for tower, key in (("vision_config", "out_hidden_size"), ("vision_config", "projector_output_dim"), ("audio_config", "output_dim")):
        sub = fields.get(tower)
        if isinstance(sub, dict) and key in sub:
            fields[tower] = {**sub, key: text["hidden_size"]}
    return fields


def fields_of(model_type: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The config to build: the harness's (MoE) fields over tiny non-MoE ones."""
    spec = SPECS.get(model_type)
    if spec is not None and spec.nested_config:
        # A vision-language model: the fixture's tiny config (vision tower included), its text
        # decoder's sizes replaced by the harness's; the vision tower projects to that hidden size.
        base = spec.config("f32")
        if "thinker_config" in base:  # qwen3_omni_moe: the text decoder is the thinker's
            inner = fields_of_nested(model_type, base["thinker_config"], cfg.get("thinker_config", {}))
            return {**base, **{k: v for k, v in cfg.items() if k != "thinker_config"}, "thinker_config": inner}
        return fields_of_nested(model_type, base, cfg)
    layers = int(cfg.get("num_hidden_layers", cfg.get("n_layers", 1)))
    fields = {**BASE_CONFIG, **ATTENTION, **extras(model_type, layers), **cfg}
    if model_type == "dbrx":
        for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim"):
            fields.pop(k, None)
    return fields


def check(sample: dict[str, Any]) -> list[str]:
    cfg = dict(sample["config"])
    model_type = cfg.pop("model_type")
    fields = fields_of(model_type, cfg)
    spec = SPECS.get(model_type)
    torch.manual_seed(0)
    try:
        config = AutoConfig.for_model(model_type, **fields)
        model = build_model(config)
    except Exception as e:  # a config transformers cannot build at all
        return [f"transformers cannot build it: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
    problems: list[str] = []
    for layout, original in (("original", True), ("fused", False)):
        want: dict[str, list[int]] = sample["layouts"][layout]["tensors"]
        modules = [m + "." for m in sample["layouts"][layout]["modules"]]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                saved = saved_tables(model, Path(tmp), original, spec.original_transform if spec is not None and original else None)
            except Exception as e:
                problems.append(f"{layout}: transformers cannot save it: {type(e).__name__}: {e}")
                continue
        # A tensor a layout stores beside its module (axk1's post_mlp_layernorm) is compared by name.
        got = {k: v for k, v in saved.items() if any(k.startswith(m) for m in modules) or k in want}
        for k in sorted(set(want) - set(got)):
            problems.append(f"{layout}: the registry has {k} {want[k]}, transformers does not")
        for k in sorted(set(got) - set(want)):
            problems.append(f"{layout}: transformers has {k} {got[k]}, the registry does not")
        for k in sorted(set(want) & set(got)):
            if want[k] != got[k]:
                problems.append(f"{layout}: {k}: registry shape {want[k]}, transformers {got[k]}")
        for k, shape in sorted(got.items()):
            if 0 in shape:
                problems.append(f"{layout}: transformers builds {k} with a zero-width shape {shape}")
        if not got:
            problems.append(f"{layout}: transformers saves nothing under {', '.join(modules)}")
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("exported", type=Path, help="JSON written by properties/export-generated-configs.ts")
    ap.add_argument("--record", type=Path, help="write the verdicts here (golden/generated-configs.json)")
    ap.add_argument("--types", nargs="*", help="only these model types")
    args = ap.parse_args(argv)
    transformers.logging.set_verbosity_error()
    data = json.loads(args.exported.read_text())
    records = []
    failed = 0
    for s in data["samples"]:
        if args.types and s["modelType"] not in args.types:
            continue
        problems = check(s)
        counter = s.get("excludedBy")
        ok = bool(problems) if counter else not problems
        failed += 0 if ok else 1
        mark = "ok  " if ok else "FAIL"
        kind = f" (counterexample of {counter}: must differ)" if counter else ""
        print(f"{mark} {s['id']}{kind}" + "".join(f"\n       {p}" for p in problems[:6]), flush=True)
        rec: dict[str, Any] = {"id": s["id"], "hash": s["hash"], "ok": ok}
        if counter:
            rec["excludedBy"] = counter
        if problems:
            rec["transformers"] = problems[:6]
        records.append(rec)
    print(f"{len(records)} configs, {failed} failed")
    if args.record:
        record = {
            "what": "generated configs built by transformers: does the MoE module match the layout registry (golden/tools/check_generated_configs.py)",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "seed": data["seed"],
            "perType": data["perType"],
            "samples": records,
        }
        args.record.write_text(json.dumps(record, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
