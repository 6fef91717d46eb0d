"""Tests of moe_conformance_kit with the standard library only (numpy and torch parts run when present).

    python3 -m unittest discover -s kits/python/tests -v      # or: pytest kits/python/tests
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import moe_conformance_kit as kit  # noqa: E402

try:
    import numpy as np
except ImportError:  # pragma: no cover - depends on the machine
    np = None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def read_safetensors(data: bytes):
    """A small independent reader: header, then each tensor's bytes by its offsets."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    meta = header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0] : v["data_offsets"][1]]) for k, v in header.items()}, meta, n


def rank_tensor(request):
    return {"rank": kit.Tensor("I32", [1], struct.pack("<i", request.tp_rank)), "ids": kit.Tensor("I32", [2], struct.pack("<2i", 0, 1))}


class SafetensorsTest(unittest.TestCase):
    def test_raw_tensors_and_metadata_round_trip_with_an_aligned_header(self):
        data = kit.safetensors_bytes({"b": kit.Tensor("F32", [2], struct.pack("<2f", 1.5, -2)), "a": kit.Tensor("U8", [0], b"")}, {"k": "v"})
        tensors, meta, n = read_safetensors(data)
        self.assertEqual(n % 8, 0)
        self.assertEqual(meta, {"k": "v"})
        self.assertEqual(tensors["b"], ("F32", [2], struct.pack("<2f", 1.5, -2)))
        self.assertEqual(tensors["a"], ("U8", [0], b""))
        # Data in name order, contiguous: "a" (empty) then "b".
        self.assertEqual(json.loads(data[8 : 8 + n])["b"]["data_offsets"], [0, 8])

    def test_refuses_wrong_sizes_unknown_dtypes_and_other_values_naming_the_tensor(self):
        with self.assertRaisesRegex(ValueError, r"tensor 'x': 3 bytes for F32 \[1\] \(expected 4\)"):
            kit.safetensors_bytes({"x": kit.Tensor("F32", [1], b"abc")})
        with self.assertRaisesRegex(TypeError, r"tensor 'x': dtype 'F4' is not one this kit writes"):
            kit.safetensors_bytes({"x": kit.Tensor("F4", [2], b"a")})
        with self.assertRaisesRegex(TypeError, r"tensor 'x': list is not a torch tensor"):
            kit.safetensors_bytes({"x": [1, 2]})
        with self.assertRaisesRegex(TypeError, r"bad shape"):
            kit.safetensors_bytes({"x": kit.Tensor("U8", [-1], b"")})

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_numpy_arrays(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        tensors, _, _ = read_safetensors(kit.safetensors_bytes({"a": a.T, "b": np.array([1, 2], dtype=">i4")}))
        self.assertEqual(tensors["a"], ("F32", [3, 2], np.ascontiguousarray(a.T).tobytes()))
        self.assertEqual(tensors["b"], ("I32", [2], struct.pack("<2i", 1, 2)))

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_tensors_bf16_and_fp8_included(self):
        t = torch.tensor([[1.0, -2.5], [3.0, 0.125]], dtype=torch.bfloat16).T
        f8 = torch.tensor([0.5, -1.0]).to(torch.float8_e4m3fn)
        tensors, _, _ = read_safetensors(kit.safetensors_bytes({"t": t, "f8": f8, "s": torch.tensor(7, dtype=torch.int32)}))
        self.assertEqual(tensors["t"], ("BF16", [2, 2], t.contiguous().view(torch.int16).numpy().tobytes()))
        self.assertEqual(tensors["f8"], ("F8_E4M3", [2], f8.view(torch.uint8).numpy().tobytes()))
        self.assertEqual(tensors["s"], ("I32", [], struct.pack("<i", 7)))


class PytestEntryTest(unittest.TestCase):
    def test_a_failure_shows_its_diagnosis_evidence_and_replay(self):
        import moe_conformance_pytest as entry

        result = {
            "status": "fail",
            "seed": 7,
            "replay": "npx moe-conformance check --loader x --case moe:load:model=mixtral",
            "failure": {
                "message": "tensor layers.0.experts.w13 differs",
                "tensor": "layers.0.experts.w13",
                "diagnosis": [
                    {"tensor": "layers.0.experts.w13", "kind": "gate-up-swapped", "detail": "experts 0, 3: gate and up halves swapped"},
                    {"tensor": "", "kind": "unknown", "detail": "no known relation"},
                ],
            },
        }
        self.assertEqual(
            entry.failure_text(result).splitlines(),
            [
                "tensor layers.0.experts.w13 differs",
                "[gate-up-swapped] layers.0.experts.w13: experts 0, 3: gate and up halves swapped",
                "[unknown] no known relation",
                "tensor: layers.0.experts.w13",
                "seed: 7",
                "replay: npx moe-conformance check --loader x --case moe:load:model=mixtral",
            ],
        )


class CommandModeTest(unittest.TestCase):
    def test_writes_refuses_and_rejects_bad_usage(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "r.safetensors")
            self.assertEqual(kit.serve_command(lambda d, r: rank_tensor(r), ["--checkpoint", tmp, "--out", out, "--tp-size", "2", "--tp-rank", "1"], "t"), 0)
            tensors, _, _ = read_safetensors(Path(out).read_bytes())
            self.assertEqual(tensors["rank"][2], struct.pack("<i", 1))

            def refuse(d, r):
                raise ValueError("I % T != 0")

            err = io.StringIO()
            sys.stderr, saved = err, sys.stderr
            try:
                self.assertEqual(kit.serve_command(refuse, ["--checkpoint", tmp, "--out", out + "2"], "t"), 1)
                self.assertEqual(kit.serve_command(refuse, ["--checkpoint", tmp], "t"), 2)
            finally:
                sys.stderr = saved
            self.assertIn("t: ValueError: I % T != 0", err.getvalue())
            self.assertFalse(os.path.exists(out + "2"))


class WorkerModeTest(unittest.TestCase):
    def serve(self, load, requests, capabilities=None):
        stdin = io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        stdout = io.BytesIO()
        self.assertEqual(kit.serve_worker(load, "t", "9", capabilities, stdin=stdin, stdout=stdout), 0)
        return [json.loads(line) for line in stdout.getvalue().splitlines()]

    def test_handshake_then_one_answer_per_request_with_one_read_per_request(self):
        reads = []

        @kit.per_request
        def read(checkpoint):
            reads.append(checkpoint)
            return checkpoint

        def load(checkpoint, request):
            read(checkpoint)
            if request.tp_size == 3:
                raise RuntimeError("TP 3 does not divide I")
            return rank_tensor(request)

        with tempfile.TemporaryDirectory() as tmp:
            job = lambda r, t=2: {"out": os.path.join(tmp, f"{r}-{t}"), "tpSize": t, "tpRank": r, "epSize": 1, "epRank": 0, "epPlacement": "linear"}
            lines = self.serve(load, [{"id": 1, "checkpoint": "/c", "ranks": [job(0), job(1)]}, {"id": 2, "checkpoint": "/c", "ranks": [job(0, 3)]}], {"maxTp": 2})
            self.assertEqual(lines[0], {"protocol": "moe-conformance-worker", "version": 1, "loader": {"name": "t", "version": "9"}, "capabilities": {"maxTp": 2}})
            self.assertEqual(lines[1], {"id": 1, "status": "ok"})
            self.assertEqual(lines[2], {"id": 2, "status": "refused", "reason": "RuntimeError: TP 3 does not divide I"})
            self.assertEqual(read_safetensors(Path(job(1)["out"]).read_bytes())[0]["rank"][2], struct.pack("<i", 1))
            # Two ranks of request 1 shared one read; request 2 read again.
            self.assertEqual(reads, ["/c", "/c"])

    def test_an_unreadable_request_ends_the_worker(self):
        with self.assertRaises(kit.ProtocolError):
            self.serve(lambda d, r: {}, [{"id": 1, "checkpoint": "/c", "ranks": [{"out": "x"}]}])

    def test_as_a_process_only_protocol_lines_reach_stdout(self):
        loader = HERE / "noisy_loader.py"
        with tempfile.TemporaryDirectory() as tmp:
            request = {"id": 4, "checkpoint": tmp, "ranks": [{"out": os.path.join(tmp, "o"), "tpSize": 1, "tpRank": 0, "epSize": 1, "epRank": 0, "epPlacement": "linear"}]}
            p = subprocess.run([sys.executable, str(loader), "--worker"], input=json.dumps(request) + "\n", capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = [json.loads(line) for line in p.stdout.splitlines()]
            self.assertEqual(lines[0]["loader"], {"name": "noisy", "version": "1"})
            self.assertEqual(lines[1], {"id": 4, "status": "ok"})
            self.assertIn("print() from the loader", p.stderr)
            self.assertIn("os.write to fd 1", p.stderr)


if __name__ == "__main__":
    unittest.main()
