"""Compare the harness's dequantization with quant_dequant.py's, bit for bit, on a generated checkpoint.

    node --import tsx app/cli/main.ts generate --model-type qwen3_moe --layout original --dtype nvfp4 \
        --experts 3 --hidden 32 --intermediate 16 --layers 1 --seed 3 --out /tmp/q
    node --import tsx app/cli/main.ts load --checkpoint /tmp/q --out /tmp/q.safetensors --dequantize
    python golden/tools/check_dequant.py /tmp/q /tmp/q.safetensors

Prints the number of F32 elements of every routed expert projection (layer 0, per-expert
layout) whose bits differ between the two dequantizations; exits 1 if any does.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_dequant import dequantize_projection, read_folder, read_safetensors  # noqa: E402


def main() -> int:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    quant = json.loads((folder / "config.json").read_text())["quantization_config"]
    t = read_folder(folder)
    o = read_safetensors(out)
    as_f32 = lambda name: np.frombuffer(o[name][2].tobytes(), dtype=np.float32).reshape(o[name][1])  # noqa: E731
    w13, w2 = as_f32("layers.0.experts.w13"), as_f32("layers.0.experts.w2")
    inter = w13.shape[1] // 2
    bad = 0
    for e in range(w13.shape[0]):
        p = f"model.layers.0.mlp.experts.{e}."
        for name, want in (("gate_proj", w13[e, :inter]), ("up_proj", w13[e, inter:]), ("down_proj", w2[e])):
            got = dequantize_projection(t, f"{p}{name}.", quant)
            bad += int((got.view(np.uint32) != want.view(np.uint32)).sum())
    print(f"{folder}: {bad} elements differ in their bits")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
