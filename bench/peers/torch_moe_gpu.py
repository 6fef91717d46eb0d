"""The torch peer of the GPU benchmark (bench/gpu/gpu.ts): one MoE layer shape, its weights
made on the GPU from the same counter-based hash as bench/gpu/shapes.ts (so no weights
travel through a file), timed in float32 (TF32 off) two ways:

- `loop`: transformers' per-expert loop (one_hot mask, the experts hit, per expert a gather,
  two linears, the activation and an index_add_), as in transformers 5.17's Mixtral experts;
- `grouped`: rows sorted by expert and torch's grouped GEMM (`torch.nn.functional.grouped_mm`
  or `torch._grouped_mm`) for both projections, where this torch has one for the dtype; if
  it refuses float32 it is run, and labelled, with bf16 operands.

Both outputs are compared with each other; the loop's output of every T is written to
OUT_DIR/y-T.f32 (raw little-endian f32, [T, H]) for the harness to compare with its own.
Prints one JSON line.

    python bench/peers/torch_moe_gpu.py --shape JSON --tokens 16,256,2048 --runs 5 --out-dir DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

MASK = 0xFFFFFFFF
SEEDS = {"x": 1, "router": 2, "w13": 3, "w2": 4, "sharedW13": 5, "sharedW2": 6, "w13Bias": 7, "w2Bias": 8, "routerBias": 9, "correction": 10}


def lowbias32(h: torch.Tensor) -> torch.Tensor:
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & MASK
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & MASK
    return h ^ (h >> 16)


def hash_values(n: int, seed: int, scale: float, bf16: bool, device: torch.device) -> torch.Tensor:
    """Element i = (hash(i + hash(seed * 0x9E3779B9)) >> 8 - 2^23) * 2^-23 * f32(scale), as bench/gpu/shapes.ts fillHash."""
    base = int(lowbias32(torch.tensor([(seed * 0x9E3779B9) & MASK], dtype=torch.int64))[0])
    i = torch.arange(n, dtype=torch.int64, device=device)
    u = lowbias32((i + base) & MASK) >> 8
    v = (u - 8388608).to(torch.float32) * (2.0 ** -23)
    v = v * torch.tensor(scale, dtype=torch.float32, device=device)
    if bf16:
        v = (v.view(torch.int32) & -65536).view(torch.float32)
    return v


def stacked(count: int, rows: int, cols: int, seed: int, first: int, scale: float, bf16: bool, device: torch.device) -> torch.Tensor:
    out = torch.empty((count, rows, cols), dtype=torch.float32, device=device)
    for e in range(count):
        out[e] = hash_values(rows * cols, seed * 100000 + first + e, scale, bf16, device).view(rows, cols)
    return out


def route(s: dict, logits: torch.Tensor, correction: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [T, k] f32, ids [T, k]) as kernels/routing.ts (float32 here, float64 there)."""
    r = s["routing"]
    k = s["topK"]
    if r["kind"] == "softmax_topk":
        p = torch.softmax(logits, dim=-1)
        w, ids = torch.topk(p, k, dim=-1)
        if r["renormalize"]:
            w = w / w.sum(dim=-1, keepdim=True)
        return w * r["scaling"], ids
    if r["kind"] == "topk_softmax":
        top, ids = torch.topk(logits, k, dim=-1)
        return torch.softmax(top, dim=-1), ids
    if r["kind"] == "sigmoid_group_limited_bias":
        sc = torch.sigmoid(logits)
        c = sc + (correction if correction is not None else 0)
        T, E = c.shape
        g = r["groups"]
        group_scores = c.view(T, g, E // g).topk(2, dim=-1)[0].sum(dim=-1)
        keep = torch.zeros_like(group_scores).scatter_(1, torch.topk(group_scores, r["topkGroups"], dim=-1)[1], 1.0)
        mask = keep.unsqueeze(-1).expand(T, g, E // g).reshape(T, E)
        masked = c.masked_fill(mask == 0, 0.0)
        ids = torch.topk(masked, k, dim=-1)[1]
        w = sc.gather(1, ids)
        if r["renormalize"]:
            w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
        return w * r["scaling"], ids
    raise SystemExit(f"routing {r['kind']} not in this peer")


def activate(s: dict, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    a = s["activation"]
    if a["kind"] == "gpt_oss_clamped":
        gate = gate.clamp(max=a["limit"])
        up = up.clamp(min=-a["limit"], max=a["limit"])
        return (up + 1) * (gate * torch.sigmoid(gate * a["alpha"]))
    return torch.nn.functional.silu(gate) * up


def router_choice(s: dict, x, router, rbias, corr):
    logits = x @ router.T
    if rbias is not None:
        logits = logits + rbias
    return route(s, logits, corr)


def plus_shared(s: dict, y, x, sw13, sw2):
    if sw13 is None:
        return y
    si = sw2.shape[1]
    h = x @ sw13.T
    return y + activate(s, h[:, :si], h[:, si:]) @ sw2.T


def loop_forward(s: dict, x, router, rbias, corr, w13, w2, b13, b2, sw13, sw2):
    """transformers' per-expert loop."""
    weights, ids = router_choice(s, x, router, rbias, corr)
    E = w13.shape[0]
    inter = w2.shape[2]
    y = torch.zeros_like(x)
    with torch.no_grad():
        mask = torch.nn.functional.one_hot(ids, num_classes=E).permute(2, 1, 0)
        hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
    for e in hit:
        e = e[0]
        pos, tok = torch.where(mask[e])
        h = torch.nn.functional.linear(x[tok], w13[e], b13[e] if b13 is not None else None)
        act = activate(s, h[:, :inter], h[:, inter:])
        o = torch.nn.functional.linear(act, w2[e], b2[e] if b2 is not None else None)
        y.index_add_(0, tok, o * weights[tok, pos, None])
    return plus_shared(s, y, x, sw13, sw2)


def grouped_mm_fn():
    f = getattr(torch.nn.functional, "grouped_mm", None)
    if f is not None:
        return "torch.nn.functional.grouped_mm", lambda a, b, offs: f(a, b, offs=offs)
    f = getattr(torch, "_grouped_mm", None)
    if f is not None:
        return "torch._grouped_mm", lambda a, b, offs: f(a, b, offs=offs)
    return None, None


def grouped_forward(s: dict, gmm, x, router, rbias, corr, w13t, w2t, b13, b2, sw13, sw2, dtype):
    """Rows sorted by expert, one grouped GEMM per projection (operands in `dtype`, output f32)."""
    weights, ids = router_choice(s, x, router, rbias, corr)
    k = ids.shape[1]
    E = w13t.shape[0]
    inter = w2t.shape[1]
    flat = ids.reshape(-1)
    order = torch.argsort(flat, stable=True)
    tok = order // k
    offs = torch.cumsum(torch.bincount(flat, minlength=E), 0).to(torch.int32)
    h = gmm(x[tok].to(dtype), w13t, offs).float()
    if b13 is not None:
        h = h + b13[flat[order]]
    act = activate(s, h[:, :inter], h[:, inter:])
    o = gmm(act.to(dtype), w2t, offs).float()
    if b2 is not None:
        o = o + b2[flat[order]]
    y = torch.zeros_like(x).index_add_(0, tok, o * weights.reshape(-1)[order, None])
    return plus_shared(s, y, x, sw13, sw2)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_ms(fn, runs: int, warmup: int) -> tuple[list[float], torch.Tensor]:
    out = None
    times = []
    for i in range(warmup + runs):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return times, out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True)
    p.add_argument("--tokens", default="16,256,2048")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="cuda")
    a = p.parse_args(argv)
    s = json.loads(a.shape)
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    H, I, E, Is = s["hidden"], s["intermediate"], s["experts"], s["sharedIntermediate"]
    sc = s["scales"]
    tokens = [int(t) for t in a.tokens.split(",")]
    x_all = hash_values(max(tokens) * H, SEEDS["x"] * 100000, sc["x"], False, dev).view(max(tokens), H)
    router = hash_values(E * H, SEEDS["router"] * 100000, sc["router"], False, dev).view(E, H)
    w13 = stacked(E, 2 * I, H, SEEDS["w13"], 0, sc["w13"], True, dev)
    w2 = stacked(E, H, I, SEEDS["w2"], 0, sc["w2"], True, dev)
    b13 = b2 = rbias = corr = sw13 = sw2 = None
    if s["biases"]:
        b13 = stacked(E, 1, 2 * I, SEEDS["w13Bias"], 0, sc["w13Bias"], False, dev).view(E, 2 * I)
        b2 = stacked(E, 1, H, SEEDS["w2Bias"], 0, sc["w2Bias"], False, dev).view(E, H)
        rbias = hash_values(E, SEEDS["routerBias"] * 100000, sc["routerBias"], False, dev)
    if s["correction"]:
        corr = hash_values(E, SEEDS["correction"] * 100000, sc["correction"], False, dev)
    if Is > 0:
        sw13 = stacked(1, 2 * Is, H, SEEDS["sharedW13"], 0, sc["sharedW13"], True, dev)[0]
        sw2 = stacked(1, H, Is, SEEDS["sharedW2"], 0, sc["sharedW2"], True, dev)[0]

    gname, gmm = grouped_mm_fn()
    gdtype = None
    w13t = w2t = None
    result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None, "grouped_fn": gname, "sizes": []}
    if gmm is not None:
        for dtype in (torch.float32, torch.bfloat16):
            try:
                w13t = w13.to(dtype).transpose(1, 2)
                w2t = w2.to(dtype).transpose(1, 2)
                probe = torch.zeros((32, H), dtype=dtype, device=dev)
                gmm(probe, w13t, torch.full((E,), 32, dtype=torch.int32, device=dev))
                sync()
                gdtype = dtype
                break
            except Exception as e:  # noqa: BLE001 - any refusal means "not for this dtype"
                result[f"grouped_{str(dtype).split('.')[-1]}_error"] = str(e).split("\n")[0][:300]
                w13t = w2t = None
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
    result["grouped_dtype"] = str(gdtype).split(".")[-1] if gdtype is not None else None

    with torch.no_grad():
        for T in tokens:
            x = x_all[:T].contiguous()
            row = {"tokens": T}
            times, y = time_ms(lambda: loop_forward(s, x, router, rbias, corr, w13, w2, b13, b2, sw13, sw2), a.runs, a.warmup)
            row["loop_ms"] = statistics.median(times)
            row["loop_runs_ms"] = times
            y.float().cpu().numpy().astype("<f4").tofile(f"{a.out_dir}/y-{T}.f32")
            if gdtype is not None:
                try:
                    gt, yg = time_ms(lambda: grouped_forward(s, gmm, x, router, rbias, corr, w13t, w2t, b13, b2, sw13, sw2, gdtype), a.runs, a.warmup)
                    row["grouped_ms"] = statistics.median(gt)
                    row["grouped_runs_ms"] = gt
                    row["grouped_vs_loop_rel"] = float((yg - y).abs().max() / y.abs().max())
                except Exception as e:  # noqa: BLE001
                    row["grouped_error"] = str(e).split("\n")[0][:300]
            result["sizes"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    result["max_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if dev.type == "cuda" else None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
