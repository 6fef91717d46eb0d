"""Make the quantized golden MoE fixtures in golden/hf-quant/ with Hugging Face transformers.

Set-up: the same venv as make_fixtures.py (whose helpers this script imports). Then

    .venv/bin/python golden/tools/make_quant_fixtures.py --out golden/hf-quant

makes two folders:

- `qwen3_moe-fp8/`: FP8 block-scaled experts (DeepSeek-V3 style, `quant_method: "fp8"`,
  `weight_block_size: [128, 128]`) with hidden 192 and expert intermediate 160, so both
  axes end in a partial block (64 and 32 wide). `original/` holds per-expert
  `gate_proj.weight` F8_E4M3 [I, H] + `gate_proj.weight_scale_inv` F32
  [ceil(I/128), ceil(H/128)] (likewise up and down); `fused/` holds `experts.gate_up_proj`
  [E, 2I, H] + `experts.gate_up_proj_scale_inv` [E, 2*ceil(I/128), ceil(H/128)] (the gate's
  and the up's scale rows stacked and concatenated like the weights) and `experts.down_proj`
  [E, H, I] + `experts.down_proj_scale_inv` [E, ceil(H/128), ceil(I/128)].
- `gpt_oss-mxfp4/`: MXFP4 experts as gpt-oss is published: `gate_up_proj_blocks` U8
  [E, 2I, H/32, 16], `gate_up_proj_scales` U8 [E, 2I, H/32], `down_proj_blocks`
  [E, H, I/32, 16], `down_proj_scales` [E, H, I/32], everything else bf16. gpt_oss has one
  layout, so `original/` and `fused/` are the same files (as in golden/hf/gpt_oss-*).

How the numbers are made: a tiny random model (parameters redrawn like make_fixtures.py);
each expert projection is quantized here (numpy, block amax scaling) and the model's
experts are set to the exact dequantized values W = q * s. `moe.L.output` is then
transformers' own float32 forward of those values (its ordinary, unquantized MoE block).
Independently, `numpy_forward` dequantizes the saved files from their raw bytes and runs the
block's math in float64; the script checks it against `moe.L.output`.

Then transformers loads the quantized checkpoint itself (on CPU it always dequantizes:
`Fp8Dequantize` / `Mxfp4Dequantize`) and its forward is stored as `moe.L.output_hf_load`.
For MXFP4 it agrees. For FP8 with I = 160 and H = 192 it does not: `Fp8Dequantize` takes the
block size from the grid, `block = rows // scale_rows`, i.e. 80 x 96 blocks instead of
128 x 128 with partial edges; the script proves that by reproducing transformers' output
with numpy under that uniform-block reading. Details in golden/hf-quant/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import BASE_CONFIG, TOKENS, _mla, fixture_seed, moe_blocks, redraw, round_to_bf16  # noqa: E402

FP8_MAX = 448.0
FP8_BLOCK = 128
MX_BLOCK = 32
# numpy float64 against torch float32 of the same weights: float32 rounding noise only.
AGREE = 2e-5
# A disagreement that is a real difference, not noise.
DISAGREE = 1e-3

# make_fixtures' tiny-model fields; each quantized model sets its own hidden size.
BASE = {k: v for k, v in BASE_CONFIG.items() if k != "hidden_size"}


class FixtureError(Exception):
    """A fixture whose independent recomputation does not match."""


# ---------------------------------------------------------------- FP8 block scales


def e4m3_values() -> np.ndarray:
    """Value of each of the 256 F8_E4M3 (fn) bit patterns, from the bits (not from torch)."""
    b = np.arange(256)
    sign = np.where(b & 0x80, -1.0, 1.0)
    e = (b >> 3) & 15
    m = (b & 7).astype(np.float64)
    v = np.where(e == 0, m / 8 * 2.0**-6, (1 + m / 8) * 2.0 ** (e - 7))
    v = sign * v
    v[(e == 15) & ((b & 7) == 7)] = np.nan
    return v


def fp8_quantize(w: np.ndarray, block: int = FP8_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """[R, C] float -> (F8_E4M3 bits [R, C] uint8, scale [ceil(R/b), ceil(C/b)] float32), partial edge blocks."""
    rows, cols = w.shape
    grid = np.zeros((-(-rows // block), -(-cols // block)), dtype=np.float32)
    q = torch.empty(rows, cols, dtype=torch.float8_e4m3fn)
    for bi in range(grid.shape[0]):
        for bj in range(grid.shape[1]):
            tile = w[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block]
            s = np.float32(np.abs(tile).max() / FP8_MAX)
            grid[bi, bj] = s
            q[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block] = torch.from_numpy(
                np.clip(tile.astype(np.float64) / np.float64(s), -FP8_MAX, FP8_MAX)
            ).to(torch.float8_e4m3fn)
    return q.view(torch.uint8).numpy(), grid


def fp8_dequantize(bits: np.ndarray, scale: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    """W = q * s with blocks of block_rows x block_cols (the last ones partial), as float32."""
    q = e4m3_values()[bits]
    s = np.repeat(np.repeat(scale.astype(np.float64), block_rows, axis=0), block_cols, axis=1)
    return (q * s[: bits.shape[0], : bits.shape[1]]).astype(np.float32)


def hf_uniform_block_dequantize(bits: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """transformers' Fp8Dequantize reading: block = rows // scale_rows (raises when not divisible)."""
    rows, cols = bits.shape
    if rows % scale.shape[0] or cols % scale.shape[1]:
        raise FixtureError(f"transformers would refuse {bits.shape} with grid {scale.shape}")
    return fp8_dequantize(bits, scale, rows // scale.shape[0], cols // scale.shape[1])


# ---------------------------------------------------------------- MXFP4

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float64)


def e2m1_from_bits(n: np.ndarray) -> np.ndarray:
    """E2M1 value from its 4 bits (sign, 2 exponent bits with bias 1, 1 mantissa bit)."""
    sign = np.where(n & 8, -1.0, 1.0)
    e = (n >> 1) & 3
    m = (n & 1).astype(np.float64)
    return sign * np.where(e == 0, m * 0.5, (1 + m / 2) * 2.0 ** (e - 1))


def mxfp4_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[R, C] -> (blocks uint8 [R, C/32, 16], scales uint8 [R, C/32]); nearest E2M1 under 2^k with amax / 2^k <= 6."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // MX_BLOCK, MX_BLOCK).astype(np.float64)
    amax = np.abs(g).max(axis=-1)
    k = np.ceil(np.log2(np.maximum(amax, 2.0**-100) / 6.0)).astype(np.int64)
    scaled = g / (2.0**k)[..., None]
    codes = np.abs(scaled[..., None] - E2M1[:8]).argmin(axis=-1)  # magnitude code, ties to the smaller
    codes = codes | np.where(scaled < 0, 8, 0)
    blocks = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    return blocks, (k + 127).astype(np.uint8)


def mxfp4_dequantize(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """blocks [..., G, 16], scales [..., G] -> [..., G*32] float64, low nibble first."""
    lo = e2m1_from_bits(blocks & 15)
    hi = e2m1_from_bits(blocks >> 4)
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], MX_BLOCK)
    vals = vals * 2.0 ** (scales.astype(np.float64) - 127)[..., None]
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * MX_BLOCK)


# ---------------------------------------------------------------- model helpers


def capture(model: torch.nn.Module, inputs: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each MoE block's output (and router logits) for the given input, by hooks."""
    out: dict[str, torch.Tensor] = {}
    for layer, (_, block) in sorted(moe_blocks(model).items()):
        seen: dict[str, torch.Tensor] = {}
        router = getattr(block, "gate", None) or getattr(block, "router")
        h = router.register_forward_hook(lambda _m, _a, o: seen.__setitem__("logits", (o[0] if isinstance(o, tuple) else o).detach().clone()))
        with torch.no_grad():
            y = block(inputs[layer].reshape(1, TOKENS, -1))
        h.remove()
        y = y[0] if isinstance(y, tuple) else y
        out[f"moe.{layer}.output"] = y.reshape(TOKENS, -1).float().contiguous()
        out[f"moe.{layer}.router_logits"] = seen["logits"].reshape(TOKENS, -1).float().contiguous()
    return out


def read_dir(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint folder as raw numpy (F8 as uint8 bits, BF16 as float32)."""
    out: dict[str, np.ndarray] = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as h:
            for k in h.keys():
                t = h.get_tensor(k)
                if t.dtype == torch.float8_e4m3fn:
                    out[k] = t.view(torch.uint8).numpy()
                elif t.dtype == torch.bfloat16:
                    out[k] = t.float().numpy()
                else:
                    out[k] = t.numpy()
    return out


def rewrite(folder: Path, replace: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], quant: dict[str, Any]) -> None:
    """Replace a saved folder's tensors (one model.safetensors) and add quantization_config."""
    f = folder / "model.safetensors"
    tensors = replace(load_file(str(f)))
    save_file(tensors, str(f), metadata={"format": "pt"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = quant
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (folder / "generation_config.json").unlink(missing_ok=True)


def hf_load_forward(folder: Path, inputs: dict[int, torch.Tensor]) -> tuple[dict[str, torch.Tensor] | None, str, dict[str, torch.Tensor] | None]:
    """transformers' own load of the quantized folder (CPU: dequantized) and its forward, or why
    it failed; then the same model with every parameter cast to float32 (MXFP4 dequantizes the
    experts to bf16 whatever `dtype` asks, so its forward runs partly in bf16)."""
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    except Exception as e:  # noqa: BLE001 - the failure is a finding, recorded in golden.json
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", None
    as_loaded = capture(model, inputs)
    return as_loaded, "loaded", capture(model.float(), inputs)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def silu(z: np.ndarray) -> np.ndarray:
    return z / (1 + np.exp(-z))


# ---------------------------------------------------------------- qwen3_moe FP8

# Both axes end in a partial 128-block (64 and 32 wide); the control has none.
FP8_SIZES = {"qwen3_moe-fp8": (192, 160), "control": (256, 128)}
FP8_E = 4


def qwen3_fp8_config(hidden: int, inter: int) -> transformers.PretrainedConfig:
    return AutoConfig.for_model(
        "qwen3_moe",
        **BASE,
        hidden_size=hidden,
        intermediate_size=inter,
        moe_intermediate_size=inter,
        num_experts=FP8_E,
        num_experts_per_tok=2,
        norm_topk_prob=True,
    )


FP8_QUANT = {
    "quant_method": "fp8",
    "fmt": "e4m3",
    "activation_scheme": "dynamic",
    "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    # Only the routed experts are quantized here (the router, attention and head stay float).
    "modules_to_not_convert": ["lm_head", "model.embed_tokens", "model.layers.0.self_attn", "model.layers.1.self_attn", "model.layers.0.mlp.gate", "model.layers.1.mlp.gate"],
}


def qwen3_numpy_forward(t: dict[str, np.ndarray], layer: int, x: np.ndarray, fused: bool, dequant) -> np.ndarray:
    """Qwen3-MoE block in float64: softmax, top-2, renormalised; down(silu(gate x) * up x)."""
    p = f"model.layers.{layer}.mlp."
    logits = x @ t[p + "gate.weight"].astype(np.float64).T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    y = np.zeros_like(x)
    for n in range(x.shape[0]):
        top = np.argsort(-probs[n], kind="stable")[:2]
        w = probs[n, top] / probs[n, top].sum()
        for e, we in zip(top, w):
            if fused:
                gu = t[p + "experts.gate_up_proj"][e]
                gus = t[p + "experts.gate_up_proj_scale_inv"][e]
                nb = gus.shape[0] // 2
                half = gu.shape[0] // 2
                gate = dequant(gu[:half], gus[:nb])
                up = dequant(gu[half:], gus[nb:])
                down = dequant(t[p + "experts.down_proj"][e], t[p + "experts.down_proj_scale_inv"][e])
            else:
                q = lambda name: dequant(t[f"{p}experts.{e}.{name}.weight"], t[f"{p}experts.{e}.{name}.weight_scale_inv"])  # noqa: E731
                gate, up, down = q("gate_proj"), q("up_proj"), q("down_proj")
            h = silu(gate.astype(np.float64) @ x[n]) * (up.astype(np.float64) @ x[n])
            y[n] += we * (down.astype(np.float64) @ h)
    return y


def make_qwen3_fp8(out: Path, seed: int, name: str) -> dict[str, Any]:
    """The FP8 fixture, or (name "control") the same with sizes that are multiples of 128, to
    show that transformers and this script agree on the format wherever no block is partial."""
    hidden, inter = FP8_SIZES[name]
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(fixture_seed(seed, "qwen3_moe", "fp8"))
    torch.manual_seed(fixture_seed(seed, "qwen3_moe", "fp8"))
    model = AutoModelForCausalLM.from_config(qwen3_fp8_config(hidden, inter), dtype=torch.float32).eval()
    redraw(model, gen)
    round_to_bf16(model)  # everything but the experts is saved in bf16 (a smaller folder)
    # Quantize each expert's gate, up and down; the model then holds exactly q * s.
    quantized: dict[tuple[int, int, str], tuple[np.ndarray, np.ndarray]] = {}
    blocks = moe_blocks(model)
    with torch.no_grad():
        for layer, (_, block) in blocks.items():
            gu, dn = block.experts.gate_up_proj, block.experts.down_proj
            for e in range(FP8_E):
                for proj, w in (("gate_proj", gu[e, :inter]), ("up_proj", gu[e, inter:]), ("down_proj", dn[e])):
                    bits, scale = fp8_quantize(w.numpy())
                    quantized[(layer, e, proj)] = (bits, scale)
                    w.copy_(torch.from_numpy(fp8_dequantize(bits, scale, FP8_BLOCK, FP8_BLOCK)))
    inputs = {layer: torch.randn(TOKENS, hidden, generator=gen) for layer in blocks}
    golden = {f"moe.{layer}.input": x for layer, x in inputs.items()}
    golden.update(capture(model, inputs))

    def per_expert(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for (layer, e, proj), (bits, scale) in quantized.items():
            key = f"model.layers.{layer}.mlp.experts.{e}.{proj}.weight"
            if key not in t:
                raise FixtureError(f"original save has no {key}")
            t[key] = torch.from_numpy(bits).view(torch.float8_e4m3fn)
            t[key[: -len(".weight")] + ".weight_scale_inv"] = torch.from_numpy(scale)
        return t

    def fused(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for layer in blocks:
            p = f"model.layers.{layer}.mlp.experts."
            q = lambda e, n: quantized[(layer, e, n)]  # noqa: E731
            gu = np.stack([np.concatenate([q(e, "gate_proj")[0], q(e, "up_proj")[0]]) for e in range(FP8_E)])
            gus = np.stack([np.concatenate([q(e, "gate_proj")[1], q(e, "up_proj")[1]]) for e in range(FP8_E)])
            t[p + "gate_up_proj"] = torch.from_numpy(gu).view(torch.float8_e4m3fn)
            t[p + "gate_up_proj_scale_inv"] = torch.from_numpy(gus)
            t[p + "down_proj"] = torch.from_numpy(np.stack([q(e, "down_proj")[0] for e in range(FP8_E)])).view(torch.float8_e4m3fn)
            t[p + "down_proj_scale_inv"] = torch.from_numpy(np.stack([q(e, "down_proj")[1] for e in range(FP8_E)]))
        return t

    saved = model.to(torch.bfloat16)  # the experts' bf16 copies are replaced by their FP8 form
    for layout, original, replace in (("original", True, per_expert), ("fused", False, fused)):
        saved.save_pretrained(folder / layout, save_original_format=original, max_shard_size="1GB")
        rewrite(folder / layout, replace, FP8_QUANT)

    report: dict[str, Any] = {}
    correct = lambda b, s: fp8_dequantize(b, s, FP8_BLOCK, FP8_BLOCK)  # noqa: E731
    for layout in ("original", "fused"):
        t = read_dir(folder / layout)
        hf, how, _ = hf_load_forward(folder / layout, inputs)
        report[layout] = {"transformers_load": how}
        for layer in blocks:
            x = inputs[layer].double().numpy()
            ref = golden[f"moe.{layer}.output"].numpy()
            ours = qwen3_numpy_forward(t, layer, x, layout == "fused", correct)
            if rel_err(ours, ref) > AGREE:
                raise FixtureError(f"fp8 {layout} layer {layer}: numpy forward differs from transformers' float forward by {rel_err(ours, ref)}")
            uniform = qwen3_numpy_forward(t, layer, x, layout == "fused", hf_uniform_block_dequantize)
            entry = {"numpy_vs_output": rel_err(ours, ref), "uniform_block_numpy_vs_output": rel_err(uniform, ref)}
            if hf is not None:
                got = hf[f"moe.{layer}.output"].numpy()
                entry["hf_load_vs_output"] = rel_err(got, ref)
                entry["hf_load_vs_uniform_block_numpy"] = rel_err(got, uniform)
                if layout == "original":
                    golden[f"moe.{layer}.output_hf_load"] = hf[f"moe.{layer}.output"]
            report[layout][str(layer)] = entry
    save_file(golden, str(folder / "golden.safetensors"))
    write_meta(folder, "qwen3_moe", blocks, "F8_E4M3 experts, F32 block scales, BF16 elsewhere", report)
    return report


# ---------------------------------------------------------------- gpt_oss MXFP4

MX_H = 96
MX_I = 64
MX_E = 8


def gpt_oss_config() -> transformers.PretrainedConfig:
    return AutoConfig.for_model(
        "gpt_oss",
        **BASE,
        hidden_size=MX_H,
        intermediate_size=MX_I,
        num_local_experts=MX_E,
        num_experts_per_tok=2,
        sliding_window=16,
        layer_types=["full_attention", "full_attention"],
    )


MX_QUANT = {
    "quant_method": "mxfp4",
    # As gpt-oss-20b's config: only the experts are MXFP4.
    "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
}


def gpt_oss_numpy_forward(t: dict[str, np.ndarray], layer: int, x: np.ndarray) -> np.ndarray:
    """gpt_oss block in float64 from the MXFP4 tensors (stored [out, in], rows interleaved)."""
    p = f"model.layers.{layer}.mlp."
    logits = x @ t[p + "router.weight"].astype(np.float64).T + t[p + "router.bias"]
    w13 = mxfp4_dequantize(t[p + "experts.gate_up_proj_blocks"], t[p + "experts.gate_up_proj_scales"])  # [E, 2I, H]
    w2 = mxfp4_dequantize(t[p + "experts.down_proj_blocks"], t[p + "experts.down_proj_scales"])  # [E, H, I]
    b13 = t[p + "experts.gate_up_proj_bias"].astype(np.float64)
    b2 = t[p + "experts.down_proj_bias"].astype(np.float64)
    y = np.zeros_like(x)
    for n in range(x.shape[0]):
        top = np.argsort(-logits[n], kind="stable")[:2]
        sel = np.exp(logits[n, top] - logits[n, top].max())
        sel /= sel.sum()
        for e, we in zip(top, sel):
            h = w13[e] @ x[n] + b13[e]
            g = np.minimum(h[0::2], 7.0)
            u = np.clip(h[1::2], -7.0, 7.0)
            a = (u + 1) * g / (1 + np.exp(-1.702 * g))
            y[n] += we * (w2[e] @ a + b2[e])
    return y


def make_gpt_oss_mxfp4(out: Path, seed: int) -> dict[str, Any]:
    folder = out / "gpt_oss-mxfp4"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(fixture_seed(seed, "gpt_oss", "mxfp4"))
    torch.manual_seed(fixture_seed(seed, "gpt_oss", "mxfp4"))
    model = AutoModelForCausalLM.from_config(gpt_oss_config(), dtype=torch.float32).eval()
    redraw(model, gen)
    round_to_bf16(model)
    packed: dict[int, dict[str, np.ndarray]] = {}
    blocks = moe_blocks(model)
    with torch.no_grad():
        for layer, (_, block) in blocks.items():
            ex = block.experts
            # Stored [out, in]: gate_up_proj [E, H, 2I] -> [E, 2I, H]; down_proj [E, I, H] -> [E, H, I].
            gu_b, gu_s = zip(*(mxfp4_quantize(ex.gate_up_proj[e].T.numpy()) for e in range(MX_E)))
            dn_b, dn_s = zip(*(mxfp4_quantize(ex.down_proj[e].T.numpy()) for e in range(MX_E)))
            packed[layer] = {
                "gate_up_proj_blocks": np.stack(gu_b),
                "gate_up_proj_scales": np.stack(gu_s),
                "down_proj_blocks": np.stack(dn_b),
                "down_proj_scales": np.stack(dn_s),
            }
            p = packed[layer]
            ex.gate_up_proj.copy_(torch.from_numpy(mxfp4_dequantize(p["gate_up_proj_blocks"], p["gate_up_proj_scales"])).transpose(1, 2))
            ex.down_proj.copy_(torch.from_numpy(mxfp4_dequantize(p["down_proj_blocks"], p["down_proj_scales"])).transpose(1, 2))
    inputs = {layer: torch.randn(TOKENS, MX_H, generator=gen) for layer in blocks}
    golden = {f"moe.{layer}.input": x for layer, x in inputs.items()}
    golden.update(capture(model, inputs))

    def mxfp4(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for layer, p in packed.items():
            pre = f"model.layers.{layer}.mlp.experts."
            del t[pre + "gate_up_proj"], t[pre + "down_proj"]
            for name, arr in p.items():
                t[pre + name] = torch.from_numpy(np.ascontiguousarray(arr))
        return t

    saved = model.to(torch.bfloat16)
    for layout in ("original", "fused"):
        saved.save_pretrained(folder / layout, save_original_format=layout == "original", max_shard_size="1GB")
        rewrite(folder / layout, mxfp4, MX_QUANT)

    report: dict[str, Any] = {}
    for layout in ("original", "fused"):
        t = read_dir(folder / layout)
        hf, how, hf32 = hf_load_forward(folder / layout, inputs)
        report[layout] = {"transformers_load": how}
        for layer in blocks:
            ref = golden[f"moe.{layer}.output"].numpy()
            ours = gpt_oss_numpy_forward(t, layer, inputs[layer].double().numpy())
            if rel_err(ours, ref) > AGREE:
                raise FixtureError(f"mxfp4 {layout} layer {layer}: numpy forward differs by {rel_err(ours, ref)}")
            entry = {"numpy_vs_output": rel_err(ours, ref)}
            if hf is not None:
                entry["hf_load_vs_output"] = rel_err(hf[f"moe.{layer}.output"].numpy(), ref)
                entry["hf_load_cast_f32_vs_output"] = rel_err(hf32[f"moe.{layer}.output"].numpy(), ref)
                if layout == "original":
                    golden[f"moe.{layer}.output_hf_load"] = hf[f"moe.{layer}.output"]
            report[layout][str(layer)] = entry
    save_file(golden, str(folder / "golden.safetensors"))
    write_meta(folder, "gpt_oss", blocks, "MXFP4 experts (U8 blocks and E8M0 scales), BF16 elsewhere", report)
    return report


# ---------------------------------------------------------------- deepseek_v3 FP8 with FP8 shared experts
#
# DeepSeek-V3 as published: routed and shared experts F8_E4M3 with F32 `weight_scale_inv` per
# 128x128 block (`mlp.shared_experts.{gate,up,down}_proj.weight_scale_inv`), router and attention
# float. Sizes are whole 128-blocks, so transformers' own FP8 path (which reads the block size
# off the grid) dequantizes as the format says; its CPU load of the experts' and the shared
# expert's weights is compared with this script's numpy dequantizer, element for element.

DS_H = 128
DS_I = 128
DS_E = 8


def deepseek_fp8_config() -> transformers.PretrainedConfig:
    return AutoConfig.for_model(
        "deepseek_v3",
        **BASE,
        hidden_size=DS_H,
        intermediate_size=DS_I,
        moe_intermediate_size=DS_I,
        n_routed_experts=DS_E,
        n_shared_experts=1,
        num_experts_per_tok=2,
        n_group=4,
        topk_group=2,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        first_k_dense_replace=0,
        **_mla(),
    )


DS_QUANT = {
    "quant_method": "fp8",
    "fmt": "e4m3",
    "activation_scheme": "dynamic",
    "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    # Routed and shared experts quantized; attention, router and head float.
    "modules_to_not_convert": ["lm_head", "model.embed_tokens", "model.layers.0.self_attn", "model.layers.1.self_attn", "model.layers.0.mlp.gate", "model.layers.1.mlp.gate"],
}


def make_deepseek_fp8_shared(out: Path, seed: int) -> dict[str, Any]:
    name = "deepseek_v3-fp8-shared"
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(fixture_seed(seed, "deepseek_v3", "fp8-shared"))
    torch.manual_seed(fixture_seed(seed, "deepseek_v3", "fp8-shared"))
    model = AutoModelForCausalLM.from_config(deepseek_fp8_config(), dtype=torch.float32).eval()
    redraw(model, gen)
    round_to_bf16(model)
    quantized: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # stored key (X.weight) -> bits, scale
    blocks = moe_blocks(model)
    with torch.no_grad():
        for layer, (path, block) in blocks.items():
            gu, dn = block.experts.gate_up_proj, block.experts.down_proj
            projs = [(f"{path}.experts.{e}.{proj}.weight", w) for e in range(DS_E) for proj, w in (("gate_proj", gu[e, :DS_I]), ("up_proj", gu[e, DS_I:]), ("down_proj", dn[e]))]
            projs += [(f"{path}.shared_experts.{proj}.weight", getattr(block.shared_experts, proj).weight) for proj in ("gate_proj", "up_proj", "down_proj")]
            for key, w in projs:
                bits, scale = fp8_quantize(w.numpy())
                quantized[key] = (bits, scale)
                w.copy_(torch.from_numpy(fp8_dequantize(bits, scale, FP8_BLOCK, FP8_BLOCK)))
    inputs = {layer: torch.randn(TOKENS, DS_H, generator=gen) for layer in blocks}
    golden = {f"moe.{layer}.input": x for layer, x in inputs.items()}
    golden.update(capture(model, inputs))

    def per_expert(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for key, (bits, scale) in quantized.items():
            if key not in t:
                raise FixtureError(f"original save has no {key}")
            t[key] = torch.from_numpy(bits).view(torch.float8_e4m3fn)
            t[key[: -len(".weight")] + ".weight_scale_inv"] = torch.from_numpy(scale)
        return t

    saved = model.to(torch.bfloat16)
    saved.save_pretrained(folder / "original", save_original_format=True, max_shard_size="1GB")
    rewrite(folder / "original", per_expert, DS_QUANT)

    # The independent check: the saved bytes dequantized by numpy are the values the golden
    # forward ran on, and transformers' own FP8 load (CPU: dequantized) holds the same values.
    t = read_dir(folder / "original")
    worst = max(float(np.abs(fp8_dequantize(t[k], t[k[: -len(".weight")] + ".weight_scale_inv"], FP8_BLOCK, FP8_BLOCK) - fp8_dequantize(b, s, FP8_BLOCK, FP8_BLOCK)).max()) for k, (b, s) in quantized.items())
    if worst != 0.0:
        raise FixtureError(f"deepseek fp8: saved bytes dequantize to other values (max diff {worst})")
    report: dict[str, Any] = {"numpy_saved_vs_forward_weights": worst}
    hf, how, _ = hf_load_forward(folder / "original", inputs)
    report["transformers_load"] = how
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(folder / "original"), dtype=torch.float32).eval()
        sd = {k: v.float() for k, v in loaded.state_dict().items()}
        diffs = {}
        for layer, (path, _) in blocks.items():
            for proj in ("gate_proj", "up_proj", "down_proj"):
                key = f"{path}.shared_experts.{proj}.weight"
                b, s = quantized[key]
                got = sd.get(key)
                diffs[key] = None if got is None or tuple(got.shape) != b.shape else float(np.abs(got.numpy() - fp8_dequantize(b, s, FP8_BLOCK, FP8_BLOCK)).max())
        report["hf_shared_weights_vs_numpy"] = diffs
    except Exception as e:  # noqa: BLE001 - recorded
        report["hf_shared_weights_vs_numpy"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
    for layer in blocks:
        ref = golden[f"moe.{layer}.output"].numpy()
        if hf is not None:
            report[str(layer)] = {"hf_load_vs_output": rel_err(hf[f"moe.{layer}.output"].numpy(), ref)}
            golden[f"moe.{layer}.output_hf_load"] = hf[f"moe.{layer}.output"]
    save_file(golden, str(folder / "golden.safetensors"))
    write_meta(folder, "deepseek_v3", blocks, "F8_E4M3 routed and shared experts, F32 block scales, BF16 elsewhere", {"original": report})
    return report


# ---------------------------------------------------------------- qwen3_moe NVFP4 and static FP8
#
# Quantized here with the producers' recipes (ModelOpt NVFP4: `weight_scale_2 = amax / (6 * 448)`,
# a F8_E4M3 scale per 16 elements, E2M1 codes as `_cast_fp4`; compressed-tensors FP8
# per-channel: `s = row amax / 448`), saved in the producers' tensor names, and dequantized
# for the model by quant_dequant.py (an independent numpy dequantizer that reads the saved
# files byte by byte). The harness's own dequantization is then checked against transformers'
# forward of these values by harness/quant/golden.test.ts.

import quant_dequant as qd  # noqa: E402

Q_E = 4
E2M1_BOUNDS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def to_e4m3_bits(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(torch.float8_e4m3fn).view(torch.uint8).numpy()


def nvfp4_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """[out, in] -> (U8 [out, in/2], F8_E4M3 bits [out, in/16], F32 scale_2), ModelOpt's recipe."""
    w = w.astype(np.float32)
    s2 = np.float32(np.abs(w).max() / np.float32(6 * 448))
    blocks = w.reshape(w.shape[0], -1, 16)
    scale = (np.abs(blocks).max(axis=-1) / (np.float32(6) * s2)).astype(np.float32)
    scale[scale == 0] = 1.0
    scale = np.maximum(scale, np.float32(2.0**-9))
    bits = to_e4m3_bits(scale)
    per_block = (qd.e4m3(bits).astype(np.float32) * s2).astype(np.float32)
    scaled = (blocks / per_block[..., None]).reshape(w.shape)
    mag = np.abs(scaled)
    code = np.searchsorted(E2M1_BOUNDS, mag, side="left") + np.isin(mag, E2M1_BOUNDS[[1, 3, 5]])
    code = np.minimum(code, 7) | np.where(scaled < 0, 8, 0)
    packed = (code[:, 0::2] | (code[:, 1::2] << 4)).astype(np.uint8)
    return packed, bits, s2


def fp8_channel_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[out, in] -> (F8_E4M3 bits, F32 [out, 1] scale = row amax / 448)."""
    s = (np.abs(w).max(axis=1, keepdims=True) / np.float32(448)).astype(np.float32)
    return to_e4m3_bits(w / s), s


NVFP4_QUANT = {
    "quant_method": "modelopt",
    "quant_algo": "NVFP4",
    "producer": {"name": "modelopt"},
    "config_groups": {
        "group_0": {
            "weights": {"num_bits": 4, "type": "float", "group_size": 16, "dynamic": False},
            "input_activations": {"num_bits": 4, "type": "float", "group_size": 16, "dynamic": False},
            "targets": ["Linear"],
        }
    },
    "ignore": ["lm_head", "*.gate", "*self_attn*"],
}

FP8_STATIC_QUANT = {
    "quant_method": "compressed-tensors",
    "format": "float-quantized",
    "quantization_status": "compressed",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "format": "float-quantized",
            "weights": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel", "dynamic": False},
            "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor", "dynamic": False},
        }
    },
    "ignore": ["lm_head", "re:.*mlp.gate$", "re:.*self_attn.*"],
}

INT4_GROUP = 32

INT4_QUANT = {
    "quant_method": "compressed-tensors",
    "format": "pack-quantized",
    "quantization_status": "compressed",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "format": "pack-quantized",
            "weights": {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": INT4_GROUP, "actorder": None, "dynamic": False},
            "input_activations": None,
        }
    },
    "ignore": ["lm_head", "re:.*mlp.gate$", "re:.*self_attn.*"],
}


def pack_nibbles(u: np.ndarray, axis: int) -> np.ndarray:
    """Unsigned 4-bit codes -> I32 words of 8 along `axis`, element 8j+k at bits 4k of word j."""
    u = np.moveaxis(u.astype(np.uint32), axis, -1)
    u = u.reshape(*u.shape[:-1], -1, 8)
    words = np.zeros(u.shape[:-1], dtype=np.uint32)
    for k in range(8):
        words |= u[..., k] << np.uint32(4 * k)
    return np.moveaxis(words.view(np.int32), -1, axis)


def bf16_bits(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def int4_asym_quantize(w: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """[out, in] -> compressed-tensors pack-quantized tensors, asymmetric groups (min/max), BF16 scales."""
    out, cols = w.shape
    g = w.reshape(out, cols // INT4_GROUP, INT4_GROUP).astype(np.float64)
    lo = np.minimum(g.min(axis=-1), 0.0)
    hi = np.maximum(g.max(axis=-1), 0.0)
    scale = qd.float_of("BF16", bf16_bits(np.maximum((hi - lo) / 15.0, 1e-8)))
    zp = np.clip(np.round(-lo / scale) - 8, -8, 7)
    q = np.clip(np.round(g / scale[..., None]) + zp[..., None], -8, 7).reshape(out, cols)
    return {
        "weight_packed": ("I32", pack_nibbles(q + 8, 1)),
        "weight_scale": ("BF16", bf16_bits(scale)),
        "weight_zero_point": ("I32", pack_nibbles(zp + 8, 0)),
        "weight_shape": ("I64", np.array([out, cols], dtype=np.int64)),
    }


GPTQ_QUANT = {"quant_method": "gptq", "bits": 4, "group_size": INT4_GROUP, "desc_act": True, "sym": False, "checkpoint_format": "gptq", "true_sequential": True}
AWQ_QUANT = {"quant_method": "awq", "bits": 4, "group_size": INT4_GROUP, "zero_point": True, "version": "gemm", "modules_to_not_convert": ["gate"]}


def f16_bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float16).view(np.uint16)


def minmax_groups(w: np.ndarray, g_idx: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric 4-bit per (row, group) over the columns of each group: (codes u [out, in], zeros z [out, G] in 1..15, F16 scales [out, G])."""
    out = w.shape[0]
    scale = np.zeros((out, groups))
    zero = np.zeros((out, groups), dtype=np.int64)
    u = np.zeros(w.shape, dtype=np.int64)
    for g in range(groups):
        cols = np.nonzero(g_idx == g)[0]
        blk = w[:, cols].astype(np.float64)
        lo = np.minimum(blk.min(axis=1), 0.0)
        hi = np.maximum(blk.max(axis=1), 0.0)
        s = np.float16(1.0) * np.maximum((hi - lo) / 14.0, 1e-6)  # 14 steps: the zero stays in 1..15 (GPTQ v1 cannot store 0)
        s = s.astype(np.float16).astype(np.float64)
        z = np.clip(np.round(-lo / s) + 1, 1, 15).astype(np.int64)
        u[:, cols] = np.clip(np.round(blk / s[:, None]) + z[:, None], 0, 15)
        scale[:, g] = s
        zero[:, g] = z
    return u, zero, scale


def gptq_desc_act_quantize(w: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[str, np.ndarray]]:
    """GPTQ v1 with desc_act: columns in a random activation order, groups of 32 in that order; zero stored - 1."""
    out, cols = w.shape
    order = rng.permutation(cols)
    g_idx = np.empty(cols, dtype=np.int32)
    g_idx[order] = np.arange(cols) // INT4_GROUP
    u, z, s = minmax_groups(w, g_idx, cols // INT4_GROUP)
    return {
        "qweight": ("I32", pack_nibbles(u.T, 0)),  # [in/8, out]: input row 8i+k at bits 4k
        "qzeros": ("I32", pack_nibbles((z - 1).T, 1)),  # [G, out/8]
        "scales": ("F16", f16_bits(s.T)),  # [G, out]
        "g_idx": ("I32", g_idx),
    }


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def pack_awq(v: np.ndarray) -> np.ndarray:
    """[r, out] codes -> I32 [r, out/8]: nibble k of word j holds column 8j + AWQ_ORDER[k]."""
    v = v.astype(np.uint32).reshape(v.shape[0], -1, 8)
    words = np.zeros(v.shape[:2], dtype=np.uint32)
    for k, col in enumerate(AWQ_ORDER):
        words |= v[:, :, col] << np.uint32(4 * k)
    return words.view(np.int32)


def awq_quantize(w: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    out, cols = w.shape
    u, z, s = minmax_groups(w, np.arange(cols) // INT4_GROUP, cols // INT4_GROUP)
    return {"qweight": ("I32", pack_awq(u.T)), "qzeros": ("I32", pack_awq(z.T)), "scales": ("F16", f16_bits(s.T))}


def nvfp4_entry(w: np.ndarray, act_scale: np.float32) -> dict[str, tuple[str, np.ndarray]]:
    packed, bits, s2 = nvfp4_quantize(w)
    return {"weight": ("U8", packed), "weight_scale": ("F8_E4M3", bits), "weight_scale_2": ("F32", np.array(s2, dtype=np.float32)), "input_scale": ("F32", np.array(act_scale, dtype=np.float32))}


def fp8_channel_entry(w: np.ndarray, act_scale: np.float32) -> dict[str, tuple[str, np.ndarray]]:
    bits, sc = fp8_channel_quantize(w)
    return {"weight": ("F8_E4M3", bits), "weight_scale": ("F32", sc), "input_scale": ("F32", np.array([act_scale], dtype=np.float32))}


# name -> (hidden, intermediate, quantization_config, quantizer(w, activation scale), activation amax divisor)
STATIC_FIXTURES = {
    "qwen3_moe-nvfp4": (64, 32, NVFP4_QUANT, nvfp4_entry, 6 * 448),
    "qwen3_moe-fp8-channel": (48, 40, FP8_STATIC_QUANT, fp8_channel_entry, 448),
    "qwen3_moe-int4-g32-asym": (64, 64, INT4_QUANT, lambda w, _a: int4_asym_quantize(w), 1),
    "qwen3_moe-gptq-desc-act": (64, 64, GPTQ_QUANT, lambda w, _a: gptq_desc_act_quantize(w, GPTQ_RNG), 1),
    "qwen3_moe-awq": (64, 64, AWQ_QUANT, lambda w, _a: awq_quantize(w), 1),
}
GPTQ_RNG = np.random.default_rng(20261207)
# Stored with the output axis last (GPTQ, AWQ): gate/up are joined along it in the fused form.
OUT_LAST = {"qweight", "qzeros", "scales"}


# Fused tensor suffix -> the per-expert name it stacks.
FUSED_SUFFIXES = (
    ("", "weight"),
    ("_packed", "weight_packed"),
    ("_weight_scale", "weight_scale"),
    ("_weight_scale_2", "weight_scale_2"),
    ("_weight_zero_point", "weight_zero_point"),
    ("_weight_shape", "weight_shape"),
    ("_input_scale", "input_scale"),
    ("_qweight", "qweight"),
    ("_qzeros", "qzeros"),
    ("_scales", "scales"),
    ("_g_idx", "g_idx"),
)


def fused_view(t: dict, p: str, e: int, proj: str, inter: int) -> tuple[dict, str]:
    """One expert projection of a fused checkpoint as the per-expert tensors quant_dequant reads."""
    src = "gate_up_proj" if proj in ("gate_proj", "up_proj") else "down_proj"
    half = {"gate_proj": 0, "up_proj": 1, "down_proj": None}[proj]
    view = {}
    for suffix, name in FUSED_SUFFIXES:
        key = f"{p}experts.{src}{suffix}"
        if key not in t:
            continue
        dt, _, arr = t[key]
        a = arr[e]
        if half is not None and name == "weight_zero_point":
            a = a[half * inter // 8 : (half + 1) * inter // 8]  # eight output rows to a word
        elif half is not None and name in OUT_LAST:  # output axis last; qzeros and AWQ's qweight eight outputs to a word
            n = a.shape[-1] // 2
            a = a[..., half * n : (half + 1) * n]
        elif half is not None and name == "g_idx":
            a = a[half]
        elif half is not None:
            a = a[half] if a.ndim <= 1 or name == "weight_shape" else a[half * inter : (half + 1) * inter]
        view[f"x.{name}"] = (dt, list(np.shape(a)), np.asarray(a))
    return view, "x."


def qwen3_quant_numpy_forward(t: dict, layer: int, x: np.ndarray, fused: bool, quant: dict, inter: int) -> np.ndarray:
    """Qwen3-MoE block in float64 over weights dequantized by quant_dequant from the saved tensors."""
    p = f"model.layers.{layer}.mlp."
    router = qd.float_of(t[p + "gate.weight"][0], t[p + "gate.weight"][2])
    logits = x @ router.T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    y = np.zeros_like(x)

    def proj(e: int, name: str) -> np.ndarray:
        if fused:
            view, prefix = fused_view(t, p, e, name, inter)
            return qd.dequantize_projection(view, prefix, quant).astype(np.float64)
        return qd.dequantize_projection(t, f"{p}experts.{e}.{name}.", quant).astype(np.float64)

    for n in range(x.shape[0]):
        top = np.argsort(-probs[n], kind="stable")[:2]
        w = probs[n, top] / probs[n, top].sum()
        for e, we in zip(top, w):
            h = silu(proj(e, "gate_proj") @ x[n]) * (proj(e, "up_proj") @ x[n])
            y[n] += we * (proj(e, "down_proj") @ h)
    return y


def make_qwen3_static(out: Path, seed: int, name: str) -> dict[str, Any]:
    hidden, inter, quant, quantize, act_div = STATIC_FIXTURES[name]
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(fixture_seed(seed, "qwen3_moe", name))
    torch.manual_seed(fixture_seed(seed, "qwen3_moe", name))
    cfg = AutoConfig.for_model("qwen3_moe", **BASE, hidden_size=hidden, intermediate_size=inter, moe_intermediate_size=inter, num_experts=Q_E, num_experts_per_tok=2, norm_topk_prob=True)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    redraw(model, gen)
    round_to_bf16(model)
    blocks = moe_blocks(model)
    inputs = {layer: torch.randn(TOKENS, hidden, generator=gen) for layer in blocks}
    # Per (layer, expert, projection): the stored tensors under their per-expert suffixes, with their dtypes.
    stored: dict[tuple[int, int, str], dict[str, tuple[str, np.ndarray]]] = {}
    with torch.no_grad():
        for layer, (_, block) in blocks.items():
            gu, dn = block.experts.gate_up_proj, block.experts.down_proj
            act_scale = np.float32(inputs[layer].abs().max().item() / act_div)
            for e in range(Q_E):
                for proj, w in (("gate_proj", gu[e, :inter]), ("up_proj", gu[e, inter:]), ("down_proj", dn[e])):
                    entry = quantize(w.numpy(), act_scale)
                    stored[(layer, e, proj)] = entry
                    view = {f"x.{k}": (dt, list(np.shape(a)), a) for k, (dt, a) in entry.items()}
                    w.copy_(torch.from_numpy(qd.dequantize_projection(view, "x.", quant)))
    golden = {f"moe.{layer}.input": x for layer, x in inputs.items()}
    golden.update(capture(model, inputs))

    def as_torch(dt: str, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(a, copy=True, order="C"))  # np.ascontiguousarray would turn a scalar into [1]
        if dt == "F8_E4M3":
            return t.view(torch.float8_e4m3fn)
        if dt == "BF16":
            return t.view(torch.int16).view(torch.bfloat16)
        if dt == "F16":
            return t.view(torch.int16).view(torch.float16)
        return t

    def per_expert(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for (layer, e, proj), entry in stored.items():
            pre = f"model.layers.{layer}.mlp.experts.{e}.{proj}."
            if pre + "weight" not in t:
                raise FixtureError(f"original save has no {pre}weight")
            if "weight" not in entry:
                del t[pre + "weight"]
            for k, (dt, a) in entry.items():
                t[pre + k] = as_torch(dt, a)
        return t

    def fused(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        suffix_of = {name: suffix for suffix, name in FUSED_SUFFIXES}
        for layer in blocks:
            pre = f"model.layers.{layer}.mlp.experts."
            q = lambda e, n, k: stored[(layer, e, n)][k][1]  # noqa: E731
            if "weight" not in stored[(layer, 0, "gate_proj")]:  # the float weights give way to packed ones
                del t[pre + "gate_up_proj"], t[pre + "down_proj"]
            for k, (dt, _) in stored[(layer, 0, "gate_proj")].items():
                suffix = suffix_of[k]
                if k in OUT_LAST:  # output axis last: gate's outputs, then up's
                    gu = np.stack([np.concatenate([q(e, "gate_proj", k), q(e, "up_proj", k)], axis=-1) for e in range(Q_E)])
                    dn = np.stack([q(e, "down_proj", k) for e in range(Q_E)])
                elif k in ("weight_shape", "g_idx"):  # [E, 2, ...] (gate, up) and [E, ...]
                    gu = np.stack([np.stack([q(e, "gate_proj", k), q(e, "up_proj", k)]) for e in range(Q_E)])
                    dn = np.stack([q(e, "down_proj", k) for e in range(Q_E)])
                elif np.ndim(q(0, "gate_proj", k)) >= 2:  # rows: gate's then up's
                    gu = np.stack([np.concatenate([q(e, "gate_proj", k), q(e, "up_proj", k)]) for e in range(Q_E)])
                    dn = np.stack([q(e, "down_proj", k) for e in range(Q_E)])
                else:  # one value per projection: [E, 2] (gate, up) and [E]
                    gu = np.stack([np.concatenate([np.ravel(q(e, "gate_proj", k)), np.ravel(q(e, "up_proj", k))]) for e in range(Q_E)])
                    dn = np.stack([np.ravel(q(e, "down_proj", k))[0] for e in range(Q_E)])
                t[pre + "gate_up_proj" + suffix] = as_torch(dt, gu)
                t[pre + "down_proj" + suffix] = as_torch(dt, dn)
        return t

    saved = model.to(torch.bfloat16)
    for layout, original, replace in (("original", True, per_expert), ("fused", False, fused)):
        saved.save_pretrained(folder / layout, save_original_format=original, max_shard_size="1GB")
        rewrite(folder / layout, replace, quant)

    report: dict[str, Any] = {}
    for layout in ("original", "fused"):
        t = qd.read_folder(folder / layout)
        report[layout] = {"transformers_load": "not attempted: transformers 5.17 cannot load pre-quantized NVFP4, nor compressed-tensors checkpoints without the compressed-tensors package, on CPU"}
        for layer in blocks:
            x = inputs[layer].double().numpy()
            ref = golden[f"moe.{layer}.output"].numpy()
            ours = qwen3_quant_numpy_forward(t, layer, x, layout == "fused", quant, inter)
            if rel_err(ours, ref) > AGREE:
                raise FixtureError(f"{name} {layout} layer {layer}: numpy forward differs from transformers' float forward by {rel_err(ours, ref)}")
            report[layout][str(layer)] = {"numpy_vs_output": rel_err(ours, ref)}
    save_file(golden, str(folder / "golden.safetensors"))
    what = ", ".join(f"{k} {dt}" for k, (dt, _) in stored[(0, 0, "gate_proj")].items()) + " per expert projection, BF16 elsewhere"
    write_meta(folder, "qwen3_moe", blocks, what, report)
    meta = json.loads((folder / "golden.json").read_text())
    meta["produced_by"] += "; expert weights dequantized by golden/tools/quant_dequant.py (independent numpy, from the saved bytes)"
    meta["output_hf_load"] = "none: transformers cannot load this format on CPU"
    (folder / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    return report


def write_meta(folder: Path, model_type: str, blocks: dict[int, tuple[str, torch.nn.Module]], dtype: str, report: dict[str, Any]) -> None:
    meta = {
        "model_type": model_type,
        "moe_layers": {str(layer): path for layer, (path, _) in sorted(blocks.items())},
        "checkpoint_dtype": dtype,
        "compute_dtype": "F32",
        "tokens": TOKENS,
        "router_logits": True,
        "produced_by": f"transformers {transformers.__version__}, torch {torch.__version__}: CPU float32 forward "
        "of each MoE block holding the exactly dequantized expert weights",
        "output_hf_load": "transformers' own load of original/ (dequantized on CPU) and its forward",
        "checks": report,
    }
    (folder / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", choices=["fp8", "mxfp4", "control", "fp8-shared", *STATIC_FIXTURES], help="control: FP8 with H = 256, I = 128 (not shipped)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    if a.only in (None, "fp8"):
        print("qwen3_moe-fp8", json.dumps(make_qwen3_fp8(a.out, a.seed, "qwen3_moe-fp8"), indent=1))
    if a.only == "control":
        print("control", json.dumps(make_qwen3_fp8(a.out, a.seed, "control"), indent=1))
    if a.only in (None, "mxfp4"):
        print("gpt_oss-mxfp4", json.dumps(make_gpt_oss_mxfp4(a.out, a.seed), indent=1))
    if a.only in (None, "fp8-shared"):
        print("deepseek_v3-fp8-shared", json.dumps(make_deepseek_fp8_shared(a.out, a.seed), indent=1))
    for name in STATIC_FIXTURES:
        if a.only in (None, name):
            print(name, json.dumps(make_qwen3_static(a.out, a.seed, name), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
