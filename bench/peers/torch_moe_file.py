"""The torch peer of the kernels benchmarks: times a Mixtral-routed MoE forward (`moe_forward`)
on the inputs of a safetensors file, so that torch and the TypeScript backends run on the
same numbers in the same benchmark. Used by bench/kernels.ts and bench/gpu/h200.ts.

The file holds `x` [T, H], `router` [E, H], `w13` [E, 2I, H], `w2` [E, H, I] (F32) and
metadata `top_k`. Prints one JSON line {ms, runs_ms, gflops, ...}; with --out, also writes
the output `y` [T, H] there for the harness to check against its float64 reference.

    python bench/peers/torch_moe_file.py INPUT.safetensors [--device cuda] [--threads 2] [--runs 5] [--tokens T] [--out Y.safetensors]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch


def moe_forward(x: torch.Tensor, router: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, top_k: int) -> torch.Tensor:
    """Mixtral: softmax over the router logits, top-k, renormalised; y = sum_e w_e * down(silu(gate x) * up x)."""
    probs = torch.softmax(x @ router.T, dim=-1)
    weights, ids = torch.topk(probs, top_k, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    inter = w2.shape[2]
    y = torch.zeros_like(x)
    for e in range(w13.shape[0]):
        token, slot = torch.nonzero(ids == e, as_tuple=True)
        if token.numel() == 0:
            continue
        h = x[token] @ w13[e].T
        act = torch.nn.functional.silu(h[:, :inter]) * h[:, inter:]
        y.index_add_(0, token, (act @ w2[e].T) * weights[token, slot, None])
    return y


# F32 safetensors read and written directly (8-byte header length, JSON header, data), so
# the peer needs only torch and numpy on the GPU machine.
def read_f32_file(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{name}: only F32 inputs are supported, found {info['dtype']}")
        begin, end = info["data_offsets"]
        data = np.fromfile(path, dtype="<f4", count=(end - begin) // 4, offset=8 + n + begin)
        out[name] = torch.from_numpy(data).reshape(info["shape"])
    return out, meta


def write_f32_file(path: str, name: str, t: torch.Tensor) -> None:
    data = t.detach().float().cpu().contiguous().numpy().astype("<f4").tobytes()
    header = json.dumps({name: {"dtype": "F32", "shape": list(t.shape), "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header + data)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--tokens", type=int, help="use only the first TOKENS rows of x")
    p.add_argument("--out")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tensors, meta = read_f32_file(a.input)
    top_k = int(meta["top_k"])
    x, router, w13, w2 = (tensors.pop(n).to(device) for n in ("x", "router", "w13", "w2"))
    if a.tokens is not None:
        x = x[: a.tokens].contiguous()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.runs):
            sync()
            start = time.perf_counter()
            y = moe_forward(x, router, w13, w2, top_k)
            sync()
            if i >= a.warmup:
                times.append((time.perf_counter() - start) * 1e3)
    tokens, hidden = x.shape
    experts, two_inter, _ = w13.shape
    inter = two_inter // 2
    flops = 2 * tokens * hidden * experts + tokens * top_k * (2 * hidden * 2 * inter + 2 * inter * hidden)
    ms = statistics.median(times)
    if a.out:
        write_f32_file(a.out, "y", y)
    print(json.dumps({
        "ms": ms, "runs_ms": times, "gflops": flops / ms / 1e6, "device": str(device),
        "threads": a.threads, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
