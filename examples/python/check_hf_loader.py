"""Check hf_transformers_loader.py against the golden fixtures, independently of the TypeScript harness.

For each fixture folder (golden/hf/<type>-<dtype>) and each parallel setting it runs the
loader in-process on original/ and fused/ and checks:
1. both layouts give byte-identical canonical tensors for every rank;
2. the TP shards reassemble, and the EP ranks hold every expert id exactly once;
3. a numpy forward of the MoE block, computed rank by rank from the canonical tensors and
   summed as spec/loader-protocol.md "Summing the ranks" says, reproduces the golden output
   (routing per spec/layouts.md §2, written here from those formulas in float64);
4. I % T != 0 is refused with a non-zero exit.

    .venv/bin/python examples/python/check_hf_loader.py [--fixtures golden/hf/mixtral-f32 ...]

Prints one line per fixture and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_transformers_loader as loader  # noqa: E402

# (tp_size, ep_size, placement): the whole model, TP and EP crossed with E % P != 0, round robin.
SETTINGS = [(1, 1, "linear"), (2, 3, "linear"), (4, 2, "round_robin")]
TOLERANCE = 2e-5


def load_rank(checkpoint: Path, tp: int, r: int, ep: int, q: int, placement: str) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rank.safetensors"
        argv = ["--checkpoint", str(checkpoint), "--out", str(out), "--tp-size", str(tp), "--tp-rank", str(r),
                "--ep-size", str(ep), "--ep-rank", str(q), "--ep-placement", placement]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = loader.run(argv)
        if rc != 0:
            raise AssertionError(f"loader exit {rc} on {checkpoint} {argv[4:]}: {err.getvalue().strip()}")
        with safe_open(str(out), framework="pt") as f:
            # torch tensors: numpy cannot hold bf16; compared exactly, converted to float64 for the forward.
            return {k: f.get_tensor(k) for k in f.keys()}


def to64(t) -> np.ndarray:
    return t.double().numpy() if t.is_floating_point() else t.numpy()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def first(cfg: dict, *names: str):
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    raise KeyError(names)


def route(mt: str, cfg: dict, x: np.ndarray, ranks0: dict, layer: int):
    """(expert ids [T,k], weights [T,k], input scale per selected expert or None) from layouts.md §2."""
    pre = f"layers.{layer}.router."
    logits = x @ to64(ranks0[pre + "weight"]).T
    if pre + "bias" in ranks0:
        logits = logits + to64(ranks0[pre + "bias"])
    corr = to64(ranks0[pre + "correction_bias"]) if pre + "correction_bias" in ranks0 else None
    k = cfg["ffn_config"]["moe_top_k"] if mt == "dbrx" else first(cfg, "num_experts_per_tok", "moe_k", "moe_topk")
    rsf = cfg.get("routed_scaling_factor", 1.0)
    if mt in ("gpt_oss", "granitemoe"):
        idx = topk(logits, k)
        return idx, softmax(np.take_along_axis(logits, idx, -1)), None
    if mt == "llama4_text":
        idx = topk(logits, k)
        return idx, np.ones_like(idx, dtype=np.float64), sigmoid(np.take_along_axis(logits, idx, -1))
    if mt == "phimoe":
        ids, ws = sparsemixer(logits, cfg["router_jitter_noise"])
        return ids, ws, None
    if mt in ("deepseek_v3", "glm4_moe", "dots1"):
        s = sigmoid(logits)
        c = s + corr
        groups = c.reshape(len(c), cfg["n_group"], -1)
        gscore = np.sort(groups, -1)[..., -2:].sum(-1)
        keep = topk(gscore, cfg["topk_group"])
        mask = np.zeros_like(gscore, dtype=bool)
        np.put_along_axis(mask, keep, True, -1)
        c = np.where(np.repeat(mask, groups.shape[-1], -1), c, -np.inf)
        idx = topk(c, k)
        w = np.take_along_axis(s, idx, -1)
        if cfg.get("norm_topk_prob"):
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        return idx, w * rsf, None
    if mt == "deepseek_v2":
        p = softmax(logits)
        if cfg["topk_method"] == "group_limited_greedy":
            groups = p.reshape(len(p), cfg["n_group"], -1)
            keep = topk(groups.max(-1), cfg["topk_group"])
            mask = np.zeros(groups.shape[:2], dtype=bool)
            np.put_along_axis(mask, keep, True, -1)
            p = np.where(np.repeat(mask, groups.shape[-1], -1), p, 0.0)
        idx = topk(p, k)
        return idx, np.take_along_axis(p, idx, -1) * rsf, None
    if mt == "ernie4_5_moe":
        p = softmax(logits)
        idx = topk(p + corr, k)
        w = np.take_along_axis(p, idx, -1)
        return idx, w / np.maximum(w.sum(-1, keepdims=True), cfg["moe_norm_min"]), None
    if mt == "lfm2_moe":
        s = sigmoid(logits)
        idx = topk(s + corr, k)
        w = np.take_along_axis(s, idx, -1)
        if cfg.get("norm_topk_prob"):
            w = w / (w.sum(-1, keepdims=True) + 1e-6)
        return idx, w * rsf, None
    p = softmax(logits)
    idx = topk(p, k)
    w = np.take_along_axis(p, idx, -1)
    if mt == "dbrx":
        norm = cfg["ffn_config"].get("moe_normalize_expert_weights")
        if norm is not None:
            w = w / (np.abs(w) ** norm).sum(-1, keepdims=True) ** (1 / norm)
    elif mt in ("mixtral", "minimax", "hunyuan_v1_moe") or cfg.get("norm_topk_prob"):
        w = w / w.sum(-1, keepdims=True)
    return idx, w, None


def sparsemixer(logits: np.ndarray, eps: float):
    """phimoe eval routing, top-2: threshold mask around the max, softmax, pick, mask the winner, repeat."""
    ids, ws = [], []
    scores = logits.copy()
    for _ in range(2):
        top = scores.max(-1, keepdims=True)
        e = scores.argmax(-1)
        factor = np.maximum(np.abs(logits), top)
        masked = np.where((top - logits) / factor > 2 * eps, -np.inf, scores)
        ids.append(e)
        ws.append(np.take_along_axis(softmax(masked), e[:, None], -1)[:, 0])
        scores = scores.copy()
        np.put_along_axis(scores, e[:, None], -np.inf, -1)
    return np.stack(ids, -1), np.stack(ws, -1)


def expert_act(mt: str, gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    if mt == "gpt_oss":
        g, u = np.minimum(gate, 7.0), np.clip(up, -7.0, 7.0)
        return (u + 1) * g * sigmoid(1.702 * g)
    return gate * sigmoid(gate) * up


def forward(mt: str, cfg: dict, x: np.ndarray, ranks: dict, layer: int) -> np.ndarray:
    """Sum over (TP rank, EP rank) of each rank's partial output, per the protocol's summing rules."""
    r00 = ranks[(0, 0)]
    idx, w, scale = route(mt, cfg, x, r00, layer)
    y = np.zeros_like(x)
    pre = f"layers.{layer}."
    for (r, q), t in ranks.items():
        ids = t[pre + "experts.ids"].numpy().tolist()
        w13, w2 = to64(t[pre + "experts.w13"]), to64(t[pre + "experts.w2"])
        half = w13.shape[1] // 2
        for slot, e in enumerate(ids):
            tok, pos = np.nonzero(idx == e)
            if len(tok) == 0:
                continue
            xin = x[tok] * (scale[tok, pos][:, None] if scale is not None else 1.0)
            h = xin @ w13[slot].T
            if pre + "experts.w13_bias" in t:
                h = h + to64(t[pre + "experts.w13_bias"])[slot]
            out = expert_act(mt, h[:, :half], h[:, half:]) @ w2[slot].T
            if r == 0 and pre + "experts.w2_bias" in t:
                out = out + to64(t[pre + "experts.w2_bias"])[slot]
            np.add.at(y, tok, out * w[tok, pos][:, None])
        if q == 0 and pre + "shared.w13" in t:
            sw13, sw2 = to64(t[pre + "shared.w13"]), to64(t[pre + "shared.w2"])
            sh = x @ sw13.T
            s = expert_act(mt, sh[:, : sw13.shape[0] // 2], sh[:, sw13.shape[0] // 2 :]) @ sw2.T
            if pre + "shared.gate" in t:
                s = s * sigmoid(x @ to64(t[pre + "shared.gate"]).T)
            y = y + s
    return y


def reassemble(name: str, whole: dict, ranks: dict, pre: str, tp: int, ep: int) -> None:
    """The TP shards of each expert, gate halves and up halves glued separately, give the whole tensors."""
    full_w13, full_w2 = whole[pre + "experts.w13"], whole[pre + "experts.w2"]
    for q in range(ep):
        for slot, e in enumerate(ranks[(0, q)][pre + "experts.ids"].tolist()):
            parts = [ranks[(r, q)] for r in range(tp)]
            half = parts[0][pre + "experts.w13"].shape[1] // 2
            gate = torch.cat([t[pre + "experts.w13"][slot, :half] for t in parts])
            up = torch.cat([t[pre + "experts.w13"][slot, half:] for t in parts])
            down = torch.cat([t[pre + "experts.w2"][slot] for t in parts], dim=1)
            if not (torch.cat([gate, up]).equal(full_w13[e]) and down.equal(full_w2[e])):
                raise AssertionError(f"{name} {pre}expert {e}: TP shards do not reassemble ({tp}x{ep})")


def check_fixture(folder: Path) -> str:
    meta = json.loads((folder / "golden.json").read_text())
    mt = meta["model_type"]
    cfg = json.loads((folder / "original" / "config.json").read_text())
    with safe_open(str(folder / "golden.safetensors"), framework="np") as f:
        golden = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}
    worst = 0.0
    whole: dict = {}
    for tp, ep, placement in SETTINGS:
        ranks = {}
        for r in range(tp):
            for q in range(ep):
                a = load_rank(folder / "original", tp, r, ep, q, placement)
                b = load_rank(folder / "fused", tp, r, ep, q, placement)
                if a.keys() != b.keys() or any(a[k].dtype != b[k].dtype or not a[k].equal(b[k]) for k in a):
                    raise AssertionError(f"{folder.name} tp {tp}/{r} ep {ep}/{q}: original/ and fused/ differ")
                ranks[(r, q)] = a
        for layer in meta["moe_layers"]:
            pre = f"layers.{layer}."
            num_experts = ranks[(0, 0)][pre + "router.weight"].shape[0]
            held = sorted(i for t in ranks.values() for i in t[pre + "experts.ids"].numpy().tolist())
            if held != sorted(list(range(num_experts)) * tp):
                raise AssertionError(f"{folder.name} {tp}x{ep} {placement}: experts held {held}")
            if (tp, ep) == (1, 1):
                whole = ranks[(0, 0)]
            else:
                reassemble(folder.name, whole, ranks, pre, tp, ep)
            y = forward(mt, cfg, golden[f"moe.{layer}.input"], ranks, int(layer))
            worst = max(worst, float(np.abs(y - golden[f"moe.{layer}.output"]).max()))
    if not worst <= TOLERANCE:
        raise AssertionError(f"{folder.name}: forward from the canonical tensors differs from golden by {worst:.2e}")
    try:
        load_rank(folder / "original", 3, 0, 1, 0, "linear")
    except AssertionError:
        pass
    else:
        raise AssertionError(f"{folder.name}: TP 3 (I = 20) was accepted")
    return f"max |forward - golden| = {worst:.1e}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixtures", nargs="*", type=Path, default=sorted(Path("golden/hf").glob("*-*")))
    args = p.parse_args(argv)
    failed = 0
    for folder in args.fixtures:
        config = folder / "original" / "config.json"
        model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
        if model_type in loader.NOT_SERVED:  # declared outside the example's capabilities, with the reason
            print(f"skip {folder.name}: not served by the example: {loader.NOT_SERVED[model_type]}", flush=True)
            continue
        try:
            print(f"ok {folder.name}: {check_fixture(folder)}", flush=True)
        except AssertionError as e:
            failed += 1
            print(f"FAILED {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
