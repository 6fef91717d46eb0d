"""A kit loader that refuses everything and declares two model types: refusal cases pass, loads fail."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import moe_conformance_kit as kit  # noqa: E402


def load(checkpoint_dir, request):
    raise RuntimeError(f"refusing {checkpoint_dir} at TP {request.tp_size}")


if __name__ == "__main__":
    kit.main(load, name="refuse-all", version="1", capabilities={"modelTypes": ["mixtral", "qwen3_moe", "olmoe", "dbrx"]})
