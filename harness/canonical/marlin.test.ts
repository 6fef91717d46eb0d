// Marlin's INT4 tile order (marlin.ts) three ways: against positions worked out by hand from
// vLLM's repack kernel, against the layouts torch computes the way vLLM's Python test helpers
// describe them (golden/marlin/marlin-layout.json, made by golden/tools/marlin_layout.py), and
// as a round trip: unpacking what was packed gives the canonical bytes back, for every tile
// count, slot count, packing and scale width.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  confusedScaleRow,
  MARLIN_INTERLEAVE,
  marlinScaleBytes,
  marlinScaleSource,
  marlinTiles,
  marlinWeightBytes,
  marlinWeightSource,
  marlinZeroBytes,
  marlinZeroSource,
  SCALE_PERM,
  SCALE_PERM_SINGLE,
  type NibblePacking,
} from './marlin.js';

const CT: NibblePacking = { alongRows: false };
const AWQ: NibblePacking = { alongRows: true, rowNibbles: [0, 2, 4, 6, 1, 3, 5, 7] };
const ZEROS: NibblePacking = { alongRows: true };

/** 4-bit codes `q[row][col]` packed as `p` says, into the canonical bytes of a `[rows, cols]` matrix. */
function packCanonical(q: number[][], p: NibblePacking): Uint8Array {
  const rows = q.length;
  const cols = q[0]!.length;
  const out = new Uint8Array((rows * cols) / 2);
  const order = p.rowNibbles ?? [0, 1, 2, 3, 4, 5, 6, 7];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = p.alongRows ? ((r >> 3) * cols + c) * 8 + order.indexOf(r & 7) : r * cols + c;
      out[i >> 1] = out[i >> 1]! | (q[r]![c]! << ((i & 1) * 4));
    }
  }
  return out;
}
const words = (b: Uint8Array) => Array.from(new Int32Array(b.slice().buffer));
const int32Bytes = (xs: number[]) => new Uint8Array(Int32Array.from(xs).buffer);
const transpose = (m: number[][]) => m[0]!.map((_, j) => m.map((row) => row[j]!));

describe('the index maps', () => {
  it('are permutations of the logical elements, for every tile count', () => {
    for (const [K, N] of [[16, 64], [32, 64], [16, 128], [64, 192]] as const) {
      const isPerm = (src: Int32Array) => [...src].sort((a, b) => a - b).every((x, i) => x === i);
      expect(isPerm(marlinWeightSource(K, N)), `weight ${K}x${N}`).toBe(true);
      for (const G of [1, 2, 3]) {
        expect(isPerm(marlinScaleSource(G, N)), `scales G=${G}`).toBe(true);
        expect(isPerm(marlinScaleSource(G, N, G === 1))).toBe(true);
        expect(isPerm(marlinZeroSource(G, N)), `zeros G=${G}`).toBe(true);
      }
    }
  });

  it('refuse sizes Marlin cannot tile', () => {
    expect(marlinTiles(32, 96)).toBe(false);
    expect(marlinTiles(24, 64)).toBe(false);
    expect(() => marlinWeightSource(32, 96)).toThrow(/N % 64 == 0.*N = 96/);
  });
});

describe('a worked example (from gptq_marlin_repack.cu, by hand)', () => {
  // K = 32, N = 128: two 16-row tiles along K, two 64-column tiles along N; a tile is 128 words.
  const K = 32;
  const N = 128;
  const src = marlinWeightSource(K, N);
  /** The (k, n) of each nibble of Marlin word w. */
  const word = (w: number) => Array.from(src.subarray(w * 8, w * 8 + 8), (l) => [l % K, Math.floor(l / K)]);

  it('word 0 (thread 0, warp 0 of tile (0, 0)): rows 0, 1, 8, 9 of columns 0 and 8, nibbles in the order 0 2 4 6 1 3 5 7', () => {
    // The thread's values: v0..v3 = rows 0, 1, 8, 9 of column 0; v4..v7 the same rows of column 8.
    // Nibble i holds v[MARLIN_INTERLEAVE[i]] = v0 v2 v4 v6 v1 v3 v5 v7.
    expect(MARLIN_INTERLEAVE).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    expect(word(0)).toEqual([[0, 0], [8, 0], [0, 8], [8, 8], [1, 0], [9, 0], [1, 8], [9, 8]]);
  });
  it('word t*4 + w is thread t of warp w: warp w moves 16 columns, thread t rows 2(t%4) and column t/4', () => {
    expect(word(1)).toEqual([[0, 16], [8, 16], [0, 24], [8, 24], [1, 16], [9, 16], [1, 24], [9, 24]]); // warp 1
    expect(word(4)).toEqual([[2, 0], [10, 0], [2, 8], [10, 8], [3, 0], [11, 0], [3, 8], [11, 8]]); // thread 1
    expect(word(16)).toEqual([[0, 1], [8, 1], [0, 9], [8, 9], [1, 1], [9, 1], [1, 9], [9, 9]]); // thread 4
    expect(word(127)).toEqual([[6, 55], [14, 55], [6, 63], [14, 63], [7, 55], [15, 55], [7, 63], [15, 63]]); // thread 31, warp 3
  });
  it('the next 128 words are the next 64 columns, and row 1 of the [K/16, 2N] words the next 16 rows of K', () => {
    expect(word(128)[0]).toEqual([0, 64]);
    expect(word(2 * N)[0]).toEqual([16, 0]);
  });
  it('scales: 64-blocks read as an 8 x 8 transpose where K has several groups, 32-blocks in pairs where it has one', () => {
    expect(SCALE_PERM.slice(0, 10)).toEqual([0, 8, 16, 24, 32, 40, 48, 56, 1, 9]);
    expect(SCALE_PERM_SINGLE.slice(0, 16)).toEqual([0, 1, 8, 9, 16, 17, 24, 25, 2, 3, 10, 11, 18, 19, 26, 27]);
    // Marlin element (g, c) holds logical (n, g) at index n*G + g.
    const G = 2;
    expect(Array.from(marlinScaleSource(G, 64).subarray(64, 67))).toEqual([0 * G + 1, 8 * G + 1, 16 * G + 1]);
    expect(Array.from(marlinScaleSource(1, 64).subarray(32, 35))).toEqual([32, 33, 40]);
  });
  it('zero points: word (g, c) nibble q holds column 64*floor(c/8) + c%8 + 8*interleave[q]', () => {
    const G = 1;
    const z = Array.from(marlinZeroSource(G, 128).subarray(0, 8));
    expect(z).toEqual([0, 16, 32, 48, 8, 24, 40, 56]);
    expect(Array.from(marlinZeroSource(G, 128).subarray(9 * 8, 9 * 8 + 2))).toEqual([65, 81]);
  });
});

describe('against torch (golden/marlin/marlin-layout.json)', () => {
  const rec = JSON.parse(readFileSync(new URL('../../golden/marlin/marlin-layout.json', import.meta.url), 'utf8')) as {
    K: number; N: number; group: number; codes_kn: number[][]; marlin_weight: number[]; marlin_weight_shape: number[];
    scales_gn: number[][]; marlin_scales_grouped: number[][]; marlin_scales_one_group: number[][]; zeros_gn: number[][]; marlin_zeros: number[]; marlin_zeros_shape: number[];
  };
  const { K, N, group } = rec;
  const G = K / group;
  const codesNK = transpose(rec.codes_kn); // canonical orientation [out = N, in = K]

  it('the weight: compressed-tensors/GPTQ words and AWQ words both repack to torch\'s Marlin words', () => {
    expect(rec.marlin_weight_shape).toEqual([K / 16, 2 * N]);
    expect(words(marlinWeightBytes(packCanonical(codesNK, CT), 1, K, N, CT, true))).toEqual(rec.marlin_weight);
    expect(words(marlinWeightBytes(packCanonical(codesNK, AWQ), 1, K, N, AWQ, true))).toEqual(rec.marlin_weight);
  });
  it('the scales, several groups along K (scale_perm) and one (scale_perm_single)', () => {
    const canonical = int32Bytes(transpose(rec.scales_gn).flat()); // [N, G]
    expect(words(marlinScaleBytes(canonical, 1, G, N, 4, true))).toEqual(rec.marlin_scales_grouped.flat());
    const one = int32Bytes(Array.from({ length: N }, (_, n) => n)); // [N, 1]: torch's input was arange(N) as [1, N]
    expect(words(marlinScaleBytes(one, 1, 1, N, 4, true))).toEqual(rec.marlin_scales_one_group.flat());
  });
  it('the zero points (marlin_zero_points: scale_perm, interleave, pack_cols)', () => {
    expect(rec.marlin_zeros_shape).toEqual([G, N / 8]);
    const canonical = packCanonical(transpose(rec.zeros_gn), ZEROS); // [N/8, G] words, eight rows of N to a word
    expect(words(marlinZeroBytes(canonical, 1, G, N, ZEROS, true))).toEqual(rec.marlin_zeros);
    // AWQ's zeros, in AWQ's nibble order, give the same Marlin words (awq_to_marlin_zero_points undoes the order first).
    expect(words(marlinZeroBytes(packCanonical(transpose(rec.zeros_gn), AWQ), 1, G, N, AWQ, true))).toEqual(rec.marlin_zeros);
  });
});

describe('round trip (fast-check, seed 15)', () => {
  const sizes = fc.record({
    K: fc.integer({ min: 1, max: 6 }).map((k) => 16 * k),
    N: fc.integer({ min: 1, max: 3 }).map((n) => 64 * n),
    slots: fc.integer({ min: 1, max: 3 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  });
  const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (Math.imul(seed ^ i, 2654435761) >>> 13) & 255);

  it('unpack(pack(x)) == x and pack moves every code, for weights, scales and zero points', () => {
    fc.assert(
      fc.property(sizes, fc.constantFrom(CT, AWQ), fc.constantFrom(1, 2, 4), fc.integer({ min: 1, max: 4 }), ({ K, N, slots, seed }, p, elem, G) => {
        const w = bytesOf((slots * K * N) / 2, seed);
        const mw = marlinWeightBytes(w, slots, K, N, p, true);
        const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
        expect(same(marlinWeightBytes(mw, slots, K, N, p, false), w)).toBe(true);
        const s = bytesOf(slots * G * N * elem, seed + 1);
        for (const grouped of [G > 1, G === 1]) expect(same(marlinScaleBytes(marlinScaleBytes(s, slots, G, N, elem, true, grouped), slots, G, N, elem, false, grouped), s)).toBe(true);
        const z = bytesOf((slots * G * N) / 2, seed + 2);
        expect(same(marlinZeroBytes(marlinZeroBytes(z, slots, G, N, p, true), slots, G, N, p, false), z)).toBe(true);
        // The same multiset of codes, in another order (never the identity: Marlin always moves codes).
        const hist = (b: Uint8Array) => [...b].flatMap((x) => [x & 15, x >> 4]).sort((a, c) => a - c).join();
        expect(hist(mw)).toEqual(hist(w));
      }),
      { seed: 15, numRuns: 60 },
    );
  });
});

describe('confusedScaleRow (the scale order of the wrong K)', () => {
  it('is what the harness finds when a loader applies one permutation and the harness undoes the other', () => {
    const N = 128;
    const canonical = Array.from({ length: N }, (_, n) => n); // one group: row n holds the value n
    for (const applied of [true, false]) {
      const marlin = marlinScaleBytes(int32Bytes(canonical), 1, 1, N, 4, true, applied);
      const back = words(marlinScaleBytes(marlin, 1, 1, N, 4, false, !applied));
      const row = confusedScaleRow(applied);
      expect(back).toEqual(canonical.map((_, n) => row(n)));
      expect(back).not.toEqual(canonical);
    }
  });
});
