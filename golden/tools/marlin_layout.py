"""Marlin's INT4 tile order computed with torch, recorded for harness/canonical/marlin.test.ts.

The harness's reference (harness/canonical/marlin.ts) is an index formula read from vLLM's
repack kernel (csrc/quantization/gptq_marlin/gptq_marlin_repack.cu). This script computes the
same layouts the other way vLLM describes them, in its Python test helpers
(vllm/model_executor/layers/quantization/utils/marlin_utils_test.py @04aa528e: get_weight_perm,
marlin_permute_weights, marlin_weights; marlin_utils.py @007d5005: get_scale_perms,
marlin_permute_scales, marlin_zero_points, pack_cols): tiles cut out with reshape/permute,
then one 1024-entry permutation per 16 x 64 tile, then packing eight codes to a word. Written
for this project from that description (vLLM is not imported: it needs CUDA); run with
/work/venv/bin/python (torch cpu):

    /work/venv/bin/python golden/tools/marlin_layout.py golden/marlin/marlin-layout.json

The record holds the inputs (codes q[k][n], K x N) and every output, so the TypeScript test
needs no Python.
"""

import json
import sys

import torch

TILE = 16
INTERLEAVE = [0, 2, 4, 6, 1, 3, 5, 7]


def weight_perm() -> torch.Tensor:
    # For each of the 32 threads: its 8 values (2 column blocks x 4 rows) of one 16 x 16 sub-tile,
    # repeated for the 4 sub-tiles (warps) of a 16 x 64 tile; then each run of 8 interleaved.
    perm = []
    for t in range(32):
        one = [16 * row + t // 4 + 8 * block
               for block in (0, 1)
               for row in (2 * (t % 4), 2 * (t % 4) + 1, 2 * (t % 4 + 4), 2 * (t % 4 + 4) + 1)]
        for warp in range(4):
            perm.extend(p + 256 * warp for p in one)
    perm = torch.tensor(perm).reshape(-1, 8)[:, INTERLEAVE].reshape(-1)
    return perm


def pack8(q: torch.Tensor) -> torch.Tensor:
    """Eight 4-bit codes to an int32 word along the last axis, element 8j+i at bits 4i."""
    q = q.to(torch.int64)
    words = torch.zeros(q.shape[:-1] + (q.shape[-1] // 8,), dtype=torch.int64)
    for i in range(8):
        words |= q[..., i::8] << (4 * i)
    return words.to(torch.int32)  # wraps into int32 as the kernels store it


def marlin_weight(q: torch.Tensor) -> torch.Tensor:
    K, N = q.shape
    tiles = q.reshape(K // TILE, TILE, N // TILE, TILE).permute(0, 2, 1, 3).reshape(K // TILE, N * TILE)
    perm = weight_perm()
    tiles = tiles.reshape(-1, perm.numel())[:, perm].reshape(K // TILE, N * TILE)
    return pack8(tiles)


def scale_perms():
    grouped = [i + 8 * j for i in range(8) for j in range(8)]
    single = [2 * i + j for i in range(4) for j in (0, 1, 8, 9, 16, 17, 24, 25)]
    return grouped, single


def marlin_scales(s: torch.Tensor, grouped: bool) -> torch.Tensor:
    G, N = s.shape
    perm = scale_perms()[0 if grouped else 1]
    return s.reshape(-1, len(perm))[:, perm].reshape(G, N)


def marlin_zeros(z: torch.Tensor) -> torch.Tensor:
    G, N = z.shape
    perm = scale_perms()[0]
    z = z.reshape(-1, len(perm))[:, perm]
    z = z.reshape(-1, 8)[:, INTERLEAVE].reshape(G, N)
    return pack8(z)


def main(out: str) -> None:
    K, N, group = 64, 128, 32
    G = K // group
    gen = torch.Generator().manual_seed(15)
    q = torch.randint(0, 16, (K, N), generator=gen)
    zeros = torch.randint(0, 16, (G, N), generator=gen)
    # Scales as distinct integers (value = its logical index n*G + g), so a permutation shows.
    scales = torch.arange(N * G).reshape(N, G).T.contiguous()  # [G, N], scales[g][n] = n*G + g
    one_group = torch.arange(N).reshape(1, N)
    record = {
        'about': 'golden/tools/marlin_layout.py: Marlin INT4 layouts computed with torch the way vLLM\'s marlin_utils_test.py / marlin_utils.py describe them',
        'K': K,
        'N': N,
        'group': group,
        'codes_kn': q.tolist(),
        'marlin_weight': [int(x) for x in marlin_weight(q).reshape(-1).tolist()],
        'marlin_weight_shape': list(marlin_weight(q).shape),
        'scales_gn': scales.tolist(),
        'marlin_scales_grouped': marlin_scales(scales, True).tolist(),
        'marlin_scales_one_group': marlin_scales(one_group, False).tolist(),
        'zeros_gn': zeros.tolist(),
        'marlin_zeros': [int(x) for x in marlin_zeros(zeros).reshape(-1).tolist()],
        'marlin_zeros_shape': list(marlin_zeros(zeros).shape),
    }
    with open(out, 'w') as f:
        json.dump(record, f, separators=(',', ':'))
        f.write('\n')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'golden/marlin/marlin-layout.json')
