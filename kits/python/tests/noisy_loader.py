"""A kit loader that prints to stdout in every way it can: none of it may reach the protocol."""

import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import moe_conformance_kit as kit  # noqa: E402


def load(checkpoint_dir, request):
    print("print() from the loader")
    os.write(1, b"os.write to fd 1\n")
    return {"rank": kit.Tensor("I32", [1], struct.pack("<i", request.tp_rank))}


if __name__ == "__main__":
    kit.main(load, name="noisy", version="1")
