"""An independent numpy dequantizer for the quantized expert formats of spec/layouts.md §4.

Written from the producers' definitions (cited there), not from the harness's TypeScript:
it reads safetensors files byte by byte (its own header parser), decodes E2M1, E4M3 and
BF16/F16 from their bit fields, and dequantizes each expert projection to float32 in the
order the producer computes it. make_quant_fixtures.py runs it on every quantized fixture it
writes and checks the forward of the result against the golden output; it can also be run
on a folder by hand:

    python golden/tools/quant_dequant.py FOLDER        # prints each projection's max |W|

Formats: NVFP4 (ModelOpt), static FP8 (per-tensor / per-channel), INT4 groups
(compressed-tensors pack-quantized, GPTQ v1, AWQ GEMM).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- safetensors, by hand

_NP = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "I8": np.int8, "F16": np.uint16, "BF16": np.uint16, "F8_E4M3": np.uint8}


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], np.ndarray]]:
    """name -> (dtype, shape, raw array: floats of 16/8 bits kept as their bit patterns)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        arr = np.frombuffer(data[8 + n + a : 8 + n + b], dtype=_NP[h["dtype"]]).reshape(h["shape"])
        out[name] = (h["dtype"], h["shape"], arr)
    return out


def read_folder(folder: Path) -> dict[str, tuple[str, list[int], np.ndarray]]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(read_safetensors(f))
    return out


# ---------------------------------------------------------------- element decoders


def e2m1_modelopt(code: np.ndarray) -> np.ndarray:
    """E2M1 from its bits (sign, 2 exponent bits bias 1, 1 mantissa bit); code 8 is +0 as in ModelOpt's table."""
    code = code.astype(np.int64)
    e = (code >> 1) & 3
    m = (code & 1).astype(np.float64)
    mag = np.where(e == 0, m * 0.5, (1 + m / 2) * 2.0 ** (e - 1))
    return np.where((code & 8) != 0, -mag, mag) + 0.0  # + 0.0 turns -0 into +0


def e4m3(bits: np.ndarray) -> np.ndarray:
    b = bits.astype(np.int64)
    e = (b >> 3) & 15
    m = (b & 7).astype(np.float64)
    v = np.where(e == 0, m / 8 * 2.0**-6, (1 + m / 8) * 2.0 ** (e - 7))
    v = np.where(b & 0x80, -v, v)
    return np.where((e == 15) & ((b & 7) == 7), np.nan, v)


def float_of(dtype: str, arr: np.ndarray) -> np.ndarray:
    """Exact float64 values of a float tensor's raw array."""
    if dtype == "F32" or dtype == "F64":
        return arr.astype(np.float64)
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "F16":
        return arr.view(np.float16).astype(np.float64)
    if dtype == "F8_E4M3":
        return e4m3(arr)
    raise ValueError(f"not a float dtype: {dtype}")


def round_to(dtype: str, x: np.ndarray) -> np.ndarray:
    """Round float64 values to `dtype` (nearest even) and back to float64."""
    if dtype == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        return r.astype(np.uint32).view(np.float32).astype(np.float64)
    raise ValueError(dtype)


# ---------------------------------------------------------------- formats (one projection each)


def nvfp4(weight: np.ndarray, scale: np.ndarray, scale_2: float) -> np.ndarray:
    """U8 [out, in/2], F8_E4M3 bits [out, in/16], F32 scalar -> float32 [out, in] (ModelOpt's two roundings)."""
    out, half = weight.shape
    codes = np.empty((out, 2 * half), dtype=np.int64)
    codes[:, 0::2] = weight & 0x0F
    codes[:, 1::2] = weight >> 4
    per_block = (e4m3(scale) * np.float64(np.float32(scale_2))).astype(np.float32).astype(np.float64)
    return (e2m1_modelopt(codes) * np.repeat(per_block, 16, axis=1)).astype(np.float32)


def fp8_static(weight: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """F8_E4M3 bits [out, in] times a per-tensor ([] / [1]) or per-channel ([out, 1]) F32 scale."""
    s = scale.astype(np.float64).reshape(-1, 1) if scale.size > 1 else np.float64(scale.reshape(-1)[0])
    return (e4m3(weight) * s).astype(np.float32)


def unpack_nibbles(words: np.ndarray, axis: int) -> np.ndarray:
    """I32 words -> 8 nibbles each along `axis`, nibble k = bits 4k..4k+3."""
    w = words.astype(np.int64) & 0xFFFFFFFF
    parts = [(w >> (4 * k)) & 15 for k in range(8)]
    stacked = np.stack(parts, axis=axis + 1)
    shape = list(words.shape)
    shape[axis] *= 8
    return stacked.reshape(shape)


def int4_dequant(u: np.ndarray, z: np.ndarray, s: np.ndarray, s_dtype: str, g: np.ndarray) -> np.ndarray:
    """u [out, in] codes, z and s [out, groups], g [in] group of each column; (u - z) * s in the scale dtype."""
    diff = u - z[:, g]
    return round_to(s_dtype, diff * s[:, g]).astype(np.float32)


def ct_pack_quantized(t: dict, prefix: str, group: int) -> np.ndarray:
    dt, _, packed = t[prefix + "weight_packed"]
    out, cols = (int(x) for x in t[prefix + "weight_shape"][2])
    u = unpack_nibbles(packed, 1)[:, :cols]  # stored q + 8
    sdt, _, sraw = t[prefix + "weight_scale"]
    s = float_of(sdt, sraw)
    if prefix + "weight_zero_point" in t:
        z = unpack_nibbles(t[prefix + "weight_zero_point"][2], 0)[:out]  # zp + 8, packed along out
    else:
        z = np.full(s.shape, 8)
    g = t[prefix + "weight_g_idx"][2].astype(np.int64) if prefix + "weight_g_idx" in t else np.arange(cols) // group
    return int4_dequant(u, z, s, sdt, g)


def gptq(t: dict, prefix: str, v2: bool = False) -> np.ndarray:
    u = unpack_nibbles(t[prefix + "qweight"][2], 0).T  # [in, out] -> [out, in]
    zs = unpack_nibbles(t[prefix + "qzeros"][2], 1).T + (0 if v2 else 1)  # stored zero - 1
    sdt, _, sraw = t[prefix + "scales"]
    s = float_of(sdt, sraw).T
    g = t[prefix + "g_idx"][2].astype(np.int64)
    return int4_dequant(u, zs, s, sdt, g)


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def awq_unpack(words: np.ndarray) -> np.ndarray:
    """[r, out/8] -> [r, out]: nibble k of word j is column 8j + AWQ_ORDER[k]."""
    nib = unpack_nibbles(words, 1).reshape(words.shape[0], -1, 8)
    out = np.empty_like(nib)
    for k, col in enumerate(AWQ_ORDER):
        out[:, :, col] = nib[:, :, k]
    return out.reshape(words.shape[0], -1)


def awq(t: dict, prefix: str, group: int) -> np.ndarray:
    u = awq_unpack(t[prefix + "qweight"][2]).T
    z = awq_unpack(t[prefix + "qzeros"][2]).T
    sdt, _, sraw = t[prefix + "scales"]
    s = float_of(sdt, sraw).T
    g = np.arange(u.shape[1]) // group
    return int4_dequant(u, z, s, sdt, g)


def dequantize_projection(t: dict, prefix: str, quant: dict) -> np.ndarray:
    """One expert projection `prefix` (e.g. `model.layers.0.mlp.experts.3.gate_proj.`) of a per-expert checkpoint."""
    method = quant.get("quant_method")
    if method == "modelopt" and quant.get("quant_algo") == "NVFP4":
        return nvfp4(t[prefix + "weight"][2], t[prefix + "weight_scale"][2], float(t[prefix + "weight_scale_2"][2].reshape(-1)[0]))
    if (method == "modelopt" and quant.get("quant_algo") == "FP8") or (method == "fp8" and "weight_block_size" not in quant):
        return fp8_static(t[prefix + "weight"][2], t[prefix + "weight_scale"][2])
    if method == "compressed-tensors":
        w = quant["config_groups"]["group_0"]["weights"]
        if quant.get("format") == "float-quantized":
            return fp8_static(t[prefix + "weight"][2], t[prefix + "weight_scale"][2])
        return ct_pack_quantized(t, prefix, int(w["group_size"]))
    if method == "gptq":
        return gptq(t, prefix, quant.get("checkpoint_format") == "gptq_v2")
    if method == "awq":
        return awq(t, prefix, int(quant["group_size"]))
    raise ValueError(f"no dequantizer for {quant}")


def main() -> None:
    folder = Path(sys.argv[1])
    quant = json.loads((folder / "config.json").read_text())["quantization_config"]
    t = read_folder(folder)
    prefixes = sorted({k.rsplit(".", 1)[0] + "." for k in t if k.endswith((".weight_scale", ".weight_packed", ".qweight"))})
    for p in prefixes:
        w = dequantize_projection(t, p, quant)
        print(f"{p} {list(w.shape)} max|W| = {np.abs(w).max():.6g}")


if __name__ == "__main__":
    main()
