"""Python peer of the MoE forward benchmark: mixtral routing, top-2, float32, timed in torch.

Default size T=256 tokens, H=1024, I=2816, E=8 on CPU with 2 threads (the project's CPU
budget). `--size large` is H=4096, I=14336 (Mixtral 8x7B's expert shape); `--device cuda`
runs on a GPU with TF32 off so the math stays float32. Prints one JSON line
{"ms", "gflops", ...}: the median of `--runs` timed forwards after `--warmup` untimed ones.
FLOPs counted: router 2*T*H*E plus, per routed token and expert, 2*H*2I (gate and up) and
2*I*H (down).

    .venv/bin/python bench/python/torch_forward.py
    python bench/python/torch_forward.py --device cuda --size large
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

SIZES = {"default": (1024, 2816), "large": (4096, 14336)}


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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    hidden, inter = SIZES[a.size]
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int, scale: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(device)

    x = randn(a.tokens, hidden, scale=1.0)
    router = randn(a.experts, hidden, scale=hidden**-0.5)
    w13 = randn(a.experts, 2 * inter, hidden, scale=hidden**-0.5)
    w2 = randn(a.experts, hidden, inter, scale=inter**-0.5)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.runs):
            sync()
            start = time.perf_counter()
            moe_forward(x, router, w13, w2, a.top_k)
            sync()
            if i >= a.warmup:
                times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    flops = 2 * a.tokens * hidden * a.experts + a.tokens * a.top_k * (2 * hidden * 2 * inter + 2 * inter * hidden)
    result = {
        "ms": round(seconds * 1e3, 3),
        "gflops": round(flops / seconds / 1e9, 2),
        "tokens": a.tokens, "hidden": hidden, "intermediate": inter, "experts": a.experts, "top_k": a.top_k,
        "device": str(device), "threads": a.threads, "runs": a.runs, "torch": torch.__version__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
