"""Serve a Python MoE weight loader to the moe-conformance harness, in both protocol modes.

You write one function, ``load(checkpoint_dir, request) -> {name: array or tensor}``, that
returns one rank's canonical tensors (spec/loader-protocol.md §1); this module does the rest:

- command mode (spec §2): ``python my_loader.py --checkpoint DIR --out FILE --tp-size T ...``
  loads one rank, writes FILE, exits 0; an exception is a refusal (exit 1, message on stderr);
- worker mode (spec §7): ``python my_loader.py --worker`` writes the handshake, then answers
  one JSON line per request (several ranks of one checkpoint), writing each rank's file, until
  stdin ends; an exception is a ``refused`` answer carrying its message.

    import moe_conformance_kit as kit

    def load(checkpoint_dir, request):
        ...  # request.tp_size, request.tp_rank, request.ep_size, request.ep_rank, request.ep_placement
        return {"layers.0.experts.ids": ..., "layers.0.experts.w13": ..., ...}

    if __name__ == "__main__":
        kit.main(load, name="my-engine", version="0.3.1", capabilities={"modelTypes": ["mixtral"]})

Values may be torch tensors, numpy arrays (including ml_dtypes' bfloat16 and float8_e4m3fn),
or ``kit.Tensor(dtype, shape, data)`` with the raw little-endian bytes. Return ``kit.Output(tensors,
metadata)`` to add ``__metadata__`` (e.g. spec §4's dequantized declaration).

Engines read a checkpoint once and cut every rank from it: decorate the expensive read with
``@kit.per_request`` and it runs once per request (a worker request lists every rank of a case),
its cache dropped when the request is answered.

Standard library only; numpy and torch are used when the values are theirs. Python 3.9+.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

PROTOCOL = "moe-conformance-worker"
VERSION = 1
MAX_LINE_BYTES = 1024 * 1024
PLACEMENTS = ("linear", "round_robin")
# Bytes per element of each safetensors dtype (the sub-byte ones are not written here).
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


@dataclass(frozen=True)
class Request:
    """One rank of spec §2: TP rank ``tp_rank`` of ``tp_size``, EP rank ``ep_rank`` of ``ep_size``."""

    tp_size: int
    tp_rank: int
    ep_size: int
    ep_rank: int
    ep_placement: str


@dataclass(frozen=True)
class Tensor:
    """A tensor as raw bytes: safetensors dtype name (``F32``, ``BF16``, ``I32``, ...), shape, little-endian data."""

    dtype: str
    shape: Sequence[int]
    data: bytes


@dataclass(frozen=True)
class Output:
    """What ``load`` may return instead of a plain dict: the tensors and the file's ``__metadata__``."""

    tensors: Mapping[str, Any]
    metadata: Optional[Mapping[str, str]] = None


class ProtocolError(Exception):
    """The harness sent something this kit cannot read."""


# ---------------------------------------------------------------- tensors to safetensors bytes

_TORCH_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2", "float8_e8m0fnu": "F8_E8M0", "int64": "I64", "int32": "I32", "int16": "I16",
    "int8": "I8", "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64", "bool": "BOOL",
}
_NUMPY_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2", "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8",
    "uint16": "U16", "uint32": "U32", "uint64": "U64", "bool": "BOOL",
}


def as_tensor(name: str, value: Any) -> Tensor:
    """A torch tensor, numpy array or Tensor as raw bytes; anything else is an error naming the tensor."""
    if isinstance(value, Tensor):
        t = value
    elif type(value).__module__.startswith("torch") and hasattr(value, "dtype") and hasattr(value, "detach"):
        dtype = _TORCH_DTYPES.get(str(value.dtype).replace("torch.", ""))
        if dtype is None:
            raise TypeError(f"tensor {name!r}: torch dtype {value.dtype} has no safetensors name")
        import torch  # present, since the value is a torch tensor

        flat = value.detach().to("cpu").contiguous().reshape(-1)
        data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        t = Tensor(dtype, list(value.shape), data)
    elif type(value).__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        dtype = _NUMPY_DTYPES.get(value.dtype.name)
        if dtype is None:
            raise TypeError(f"tensor {name!r}: numpy dtype {value.dtype} has no safetensors name")
        data = value.tobytes(order="C")
        if value.dtype.byteorder == ">":
            data = value.byteswap().tobytes(order="C")
        t = Tensor(dtype, list(value.shape), data)
    else:
        raise TypeError(f"tensor {name!r}: {type(value).__name__} is not a torch tensor, numpy array or kit.Tensor")
    size = DTYPE_SIZES.get(t.dtype)
    if size is None:
        raise TypeError(f"tensor {name!r}: dtype {t.dtype!r} is not one this kit writes")
    count = 1
    for d in t.shape:
        if not isinstance(d, int) or d < 0:
            raise TypeError(f"tensor {name!r}: bad shape {list(t.shape)}")
        count *= d
    if len(t.data) != count * size:
        raise ValueError(f"tensor {name!r}: {len(t.data)} bytes for {t.dtype} {list(t.shape)} (expected {count * size})")
    return t


def safetensors_bytes(tensors: Mapping[str, Any], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """One safetensors file: 8-byte header length, JSON header padded to 8 bytes, data in name order."""
    header: Dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        t = as_tensor(name, tensors[name])
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(t.data)]}
        chunks.append(t.data)
        offset += len(t.data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_output(path: str, result: Any) -> None:
    """Writes ``load``'s result atomically (a temporary sibling, then a rename)."""
    out = result if isinstance(result, Output) else Output(result)
    if not isinstance(out.tensors, Mapping):
        raise TypeError(f"load returned {type(out.tensors).__name__}, not a dict of tensors")
    data = safetensors_bytes(out.tensors, out.metadata)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- one read per request

_caches: List[Callable[[], None]] = []


def per_request(fn: Callable) -> Callable:
    """Caches ``fn`` by its arguments until the current request is answered (all its ranks share one read)."""
    cached = functools.lru_cache(maxsize=None)(fn)
    _caches.append(cached.cache_clear)
    return cached


def _end_of_request() -> None:
    for clear in _caches:
        clear()


# ---------------------------------------------------------------- the two modes


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _request_of(job: Mapping[str, Any]) -> Request:
    fields = {"tpSize": "tp_size", "tpRank": "tp_rank", "epSize": "ep_size", "epRank": "ep_rank"}
    values = {}
    for k, attr in fields.items():
        v = job.get(k)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ProtocolError(f"rank job lacks an integer {k}: {job!r}")
        values[attr] = v
    if job.get("epPlacement") not in PLACEMENTS or not isinstance(job.get("out"), str):
        raise ProtocolError(f"rank job lacks out or a valid epPlacement: {job!r}")
    return Request(ep_placement=job["epPlacement"], **values)


def handshake(name: str, version: str, capabilities: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    h: Dict[str, Any] = {"protocol": PROTOCOL, "version": VERSION, "loader": {"name": name, "version": version}}
    if capabilities is not None:
        h["capabilities"] = dict(capabilities)
    return h


def serve_worker(load: Callable, name: str, version: str, capabilities: Optional[Mapping[str, Any]] = None, stdin=None, stdout=None) -> int:
    """Worker mode (spec §7) until stdin ends. Protocol lines go to the real stdout; any other print goes to stderr."""
    if stdout is None:
        # Keep the real stdout for the protocol, and point fd 1 (and sys.stdout) at stderr, so prints
        # of the loader and its libraries, C extensions included, cannot corrupt the protocol.
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    if stdin is None:
        stdin = sys.stdin.buffer

    def send(message: Mapping[str, Any]) -> None:
        stdout.write(json.dumps(message).encode("utf-8") + b"\n")
        stdout.flush()

    send(handshake(name, version, capabilities))
    while True:
        line = stdin.readline(MAX_LINE_BYTES + 2)
        if not line:
            return 0
        if len(line) > MAX_LINE_BYTES + 1:
            raise ProtocolError(f"request line longer than {MAX_LINE_BYTES} bytes")
        if not line.strip():
            continue
        message = json.loads(line)
        if not isinstance(message, dict) or not isinstance(message.get("id"), int) or not isinstance(message.get("checkpoint"), str):
            raise ProtocolError(f"not a request: {line[:200]!r}")
        jobs = message.get("ranks")
        if not isinstance(jobs, list) or not jobs:
            raise ProtocolError(f"request {message['id']} lists no ranks")
        requests = [(_request_of(job), job["out"]) for job in jobs]
        try:
            for request, out in requests:
                write_output(out, load(message["checkpoint"], request))
            answer = {"id": message["id"], "status": "ok"}
        except Exception as e:  # a refusal, with its message; the worker stays up
            print(f"{name}: request {message['id']} refused: {_describe(e)}", file=sys.stderr)
            if os.environ.get("MOE_KIT_TRACEBACK"):
                traceback.print_exc()
            answer = {"id": message["id"], "status": "refused", "reason": _describe(e)}
        finally:
            _end_of_request()
        send(answer)


def serve_command(load: Callable, argv: Sequence[str], name: str = "loader") -> int:
    """Command mode (spec §2): one rank written to --out. Exit 0 written, 1 refused (reason on stderr), 2 bad usage."""
    import argparse

    p = argparse.ArgumentParser(prog=name, description="moe-conformance loader (spec §2); --worker serves spec §7")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tp-size", type=int, default=1)
    p.add_argument("--tp-rank", type=int, default=0)
    p.add_argument("--ep-size", type=int, default=1)
    p.add_argument("--ep-rank", type=int, default=0)
    p.add_argument("--ep-placement", choices=PLACEMENTS, default="linear")
    try:
        a = p.parse_args(list(argv))
    except SystemExit as e:
        return 2 if e.code else 0
    request = Request(a.tp_size, a.tp_rank, a.ep_size, a.ep_rank, a.ep_placement)
    try:
        write_output(a.out, load(a.checkpoint, request))
    except Exception as e:
        print(f"{name}: {_describe(e)}", file=sys.stderr)
        if os.environ.get("MOE_KIT_TRACEBACK"):
            traceback.print_exc()
        return 1
    finally:
        _end_of_request()
    return 0


def main(load: Callable, name: str, version: str, capabilities: Optional[Mapping[str, Any]] = None, argv: Optional[Sequence[str]] = None) -> None:
    """Both modes from one file: ``--worker`` serves spec §7, anything else is one spec §2 call. Exits."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        sys.exit(serve_worker(load, name, version, capabilities))
    sys.exit(serve_command(load, args, name))
