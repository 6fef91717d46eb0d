"""Verdicts of the reference safetensors reader (the Rust crate, through its Python binding).

Reads file paths from stdin, one a line, and prints one JSON line per file:
{"verdict": "accept"} or {"verdict": "refuse", "error": "..."}. A file is accepted when
safe_open opens it (the header is parsed and validated against the file's length, as
SafeTensors::read_metadata does). Used by bench/fuzz/differential.ts.
"""
import json
import sys

import safetensors
from safetensors import safe_open

print(json.dumps({"safetensors": safetensors.__version__}), flush=True)
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        with safe_open(path, framework="numpy") as f:
            list(f.keys())
            f.metadata()
        out = {"verdict": "accept"}
    except Exception as e:  # every refusal, whatever its class
        out = {"verdict": "refuse", "error": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps(out), flush=True)
