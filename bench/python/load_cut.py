"""Python peer of the "load and cut" benchmark: checkpoint -> canonical tensors of every TP rank.

It reads the way Python inference engines do: `safetensors.safe_open(framework="pt")` and
`get_slice`, so each rank reads only its rows of gate/up and its columns of down (torch, not
numpy: numpy has no bf16). It writes one safetensors file per TP rank with the protocol's
names (spec/loader-protocol.md §1, EP size 1) and prints one JSON line:
{"seconds", "bytes_read", "bytes_written", "peak_rss_bytes", "ranks", "layers"}.
`seconds` covers opening, slicing and writing; `bytes_read` counts the tensor bytes sliced.

Layouts: per-expert `experts.<e>.{w1,w3,w2}.weight` (mixtral original) or
`experts.<e>.{gate,up,down}_proj.weight`, and fused `experts.gate_up_proj` [E,2I,H] /
`experts.down_proj` [E,H,I]; router `gate.weight` or `router.weight`.

    .venv/bin/python bench/python/load_cut.py --checkpoint golden/hf/mixtral-f32/original --tp-size 2 --out /tmp/cut
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

PER_EXPERT = re.compile(
    r"^(?:.*\.)?(?:layers|blocks)\.(\d+)\.[a-z_]+\.experts\.(\d+)\.(w1|w3|w2|gate_proj|up_proj|down_proj)\.weight$"
)
FUSED = re.compile(r"^(?:.*\.)?(?:layers|blocks)\.(\d+)\.[a-z_]+\.experts\.(gate_up_proj|down_proj)$")
ROUTER = re.compile(r"^(?:.*\.)?(?:layers|blocks)\.(\d+)\.[a-z_]+\.(?:gate|router)\.weight$")
ROLE = {"w1": "gate", "gate_proj": "gate", "w3": "up", "up_proj": "up", "w2": "down", "down_proj": "down"}


class CutError(Exception):
    pass


def shard_files(checkpoint: Path) -> dict[str, Path]:
    index = checkpoint / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: checkpoint / file for name, file in weight_map.items()}
    single = checkpoint / "model.safetensors"
    with safe_open(str(single), framework="pt") as f:
        return {name: single for name in f.keys()}


def cut_all_ranks(checkpoint: Path, tp_size: int, out: Path) -> dict[str, int]:
    where = shard_files(checkpoint)
    handles = {file: safe_open(str(file), framework="pt") for file in sorted(set(where.values()))}
    per_expert: dict[int, dict[tuple[int, str], str]] = defaultdict(dict)
    fused: dict[int, dict[str, str]] = defaultdict(dict)
    routers: dict[int, str] = {}
    for name in where:
        if m := PER_EXPERT.match(name):
            per_expert[int(m[1])][(int(m[2]), ROLE[m[3]])] = name
        elif m := FUSED.match(name):
            fused[int(m[1])][m[2]] = name
        elif m := ROUTER.match(name):
            routers[int(m[1])] = name
    layers = sorted(routers)
    if not layers or set(per_expert) | set(fused) != set(layers):
        raise CutError(f"router layers {layers}, expert layers {sorted(set(per_expert) | set(fused))}")
    bytes_read = 0

    def read(name: str, index: tuple = ()) -> torch.Tensor:
        nonlocal bytes_read
        t = handles[where[name]].get_slice(name)[index] if index else handles[where[name]].get_tensor(name)
        bytes_read += t.numel() * t.element_size()
        return t

    out.mkdir(parents=True, exist_ok=True)
    bytes_written = 0
    for r in range(tp_size):
        tensors: dict[str, torch.Tensor] = {}
        for layer in layers:
            router = read(routers[layer])
            num_experts = router.shape[0]
            pre = f"layers.{layer}."
            tensors[pre + "experts.ids"] = torch.arange(num_experts, dtype=torch.int32)
            tensors[pre + "router.weight"] = router
            if layer in fused:
                shape = handles[where[fused[layer]["down_proj"]]].get_slice(fused[layer]["down_proj"]).get_shape()
                inter = shape[2]
                rows = rank_rows(inter, tp_size, r)
                gate = read(fused[layer]["gate_up_proj"], (slice(None), rows, slice(None)))
                up = read(fused[layer]["gate_up_proj"], (slice(None), slice(inter + rows.start, inter + rows.stop), slice(None)))
                tensors[pre + "experts.w13"] = torch.cat([gate, up], dim=1)
                tensors[pre + "experts.w2"] = read(fused[layer]["down_proj"], (slice(None), slice(None), rows))
            else:
                names = per_expert[layer]
                if sorted(names) != sorted((e, role) for e in range(num_experts) for role in ("gate", "up", "down")):
                    raise CutError(f"layer {layer}: expert tensors do not match {num_experts} experts")
                inter = handles[where[names[(0, "gate")]]].get_slice(names[(0, "gate")]).get_shape()[0]
                rows = rank_rows(inter, tp_size, r)
                tensors[pre + "experts.w13"] = torch.stack(
                    [torch.cat([read(names[(e, "gate")], (rows,)), read(names[(e, "up")], (rows,))]) for e in range(num_experts)]
                )
                tensors[pre + "experts.w2"] = torch.stack(
                    [read(names[(e, "down")], (slice(None), rows)) for e in range(num_experts)]
                )
        file = out / f"rank-{r}.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(file))
        bytes_written += file.stat().st_size
    return {"bytes_read": bytes_read, "bytes_written": bytes_written, "ranks": tp_size, "layers": len(layers)}


def rank_rows(inter: int, tp_size: int, r: int) -> slice:
    if inter % tp_size != 0:
        raise CutError(f"intermediate size {inter} is not divisible by TP size {tp_size}")
    part = inter // tp_size
    return slice(r * part, (r + 1) * part)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--tp-size", type=int, default=2)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    if a.checkpoint is None or a.out is None:
        p.error("--checkpoint and --out are required")
    start = time.perf_counter()
    try:
        result = cut_all_ranks(a.checkpoint, a.tp_size, a.out)
    except (CutError, OSError, KeyError) as e:
        print(f"load_cut: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"seconds": round(seconds, 4), **result, "peak_rss_bytes": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
