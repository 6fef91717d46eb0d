// Marlin's tile order for INT4 expert weights (spec/layouts.md §4.5, loader-protocol §8 form
// `marlin`): where vLLM's gptq_marlin_repack / awq_marlin_repack put each 4-bit code of a
// `[K, N]` weight (K = the input axis, N = the output axis), where marlin_permute_scales puts
// each group scale and where marlin_zero_points puts each zero point. Every map here is an
// index table: position i of the Marlin tensor holds element src[i] of the logical `[N, K]`
// codes (`[N, G]` scales and zeros, G = K / group) — the canonical orientation of spec §4 —
// so packing copies `marlin[i] = logical[src[i]]` and unpacking copies it back.
//
// Sources read (vllm-project/vllm): csrc/quantization/gptq_marlin/gptq_marlin_repack.cu
// @0794945f (the repack kernel without act-order perm: tile 16 x 64, thread/warp word
// placement, pack_idx), marlin.cuh @2f2ea061 (tile_k_size 16, tile_n_size 64),
// vllm/model_executor/layers/quantization/utils/marlin_utils.py @007d5005 (get_scale_perms,
// marlin_permute_scales, marlin_zero_points, awq_to_marlin_zero_points),
// marlin_utils_test.py @04aa528e (get_weight_perm / marlin_weights: the same weight order
// written as a reshape and a 1024-entry permutation; the fixture test checks both agree).

/** Marlin's tile: 16 rows of K by 64 columns of N (gptq_marlin_repack refuses other multiples). */
export const MARLIN_TILE_K = 16;
export const MARLIN_TILE_N = 64;

/** Nibble i of a Marlin word holds the thread's value INTERLEAVE[i] (the repack kernel's pack_idx; marlin_zero_points' interleave). */
export const MARLIN_INTERLEAVE = [0, 2, 4, 6, 1, 3, 5, 7] as const;

/** A thread's four K offsets within its 16-row tile (the kernel's tc_offsets). */
const TC_OFFSETS = [0, 1, 8, 9] as const;

/** get_scale_perms()[0]: position 8i + j of a 64-block holds column i + 8j (grouped scales and every zero point). */
export const SCALE_PERM: readonly number[] = Array.from({ length: 64 }, (_, p) => Math.floor(p / 8) + 8 * (p % 8));
/** get_scale_perms()[1]: position 8i + m of a 32-block holds column 2i + [0, 1, 8, 9, 16, 17, 24, 25][m] (one group along K). */
export const SCALE_PERM_SINGLE: readonly number[] = Array.from({ length: 32 }, (_, p) => 2 * Math.floor(p / 8) + [0, 1, 8, 9, 16, 17, 24, 25][p % 8]!);

/** Whether Marlin can hold a `[K, N]` INT4 weight: K in whole 16-row tiles, N in whole 64-column tiles. */
export const marlinTiles = (K: number, N: number) => K > 0 && N > 0 && K % MARLIN_TILE_K === 0 && N % MARLIN_TILE_N === 0;

function checkTiles(K: number, N: number): void {
  if (!marlinTiles(K, N)) throw new RangeError(`Marlin tiles need K % ${MARLIN_TILE_K} == 0 and N % ${MARLIN_TILE_N} == 0 (K = ${K}, N = ${N})`);
}

/**
 * The weight: Marlin's I32 `[K/16, 2N]` as K*N nibbles (nibble i = bits 4(i%8) of word i/8).
 * Returns, for each nibble, the logical element `n*K + k` it holds. Word `t*4 + w` of tile
 * (kt, nt) is written by thread t of warp w: its eight values are rows `2(t%4) + {0,1,8,9}`
 * of the tile at column `16w + t/4` (values 0..3) and the column 8 further (values 4..7),
 * nibble i holding value MARLIN_INTERLEAVE[i].
 */
export function marlinWeightSource(K: number, N: number): Int32Array {
  checkTiles(K, N);
  const src = new Int32Array(K * N);
  const nTiles = N / MARLIN_TILE_N;
  const tileWords = (MARLIN_TILE_K * MARLIN_TILE_N) / 8;
  for (let kt = 0; kt < K / MARLIN_TILE_K; kt++) {
    for (let nt = 0; nt < nTiles; nt++) {
      for (let t = 0; t < 32; t++) {
        for (let w = 0; w < 4; w++) {
          const word = (kt * nTiles + nt) * tileWords + t * 4 + w;
          for (let i = 0; i < 8; i++) {
            const v = MARLIN_INTERLEAVE[i]!;
            const k = kt * MARLIN_TILE_K + 2 * (t % 4) + TC_OFFSETS[v % 4]!;
            const n = nt * MARLIN_TILE_N + 16 * w + Math.floor(t / 4) + 8 * Math.floor(v / 4);
            src[word * 8 + i] = n * K + k;
          }
        }
      }
    }
  }
  return src;
}

/**
 * The scales: Marlin's `[G, N]`, each row permuted in blocks of 64 columns by SCALE_PERM
 * where the weight has more than one group along K (G > 1), else in blocks of 32 by
 * SCALE_PERM_SINGLE (marlin_permute_scales' `group_size < size_k`; the kernels take
 * `num_groups > 1` from the scales' shape). Returns, for each Marlin element `g*N + c`, the
 * logical element `n*G + g`. `grouped` overrides the choice (the mutant of the wrong K).
 */
export function marlinScaleSource(G: number, N: number, grouped = G > 1): Int32Array {
  checkTiles(MARLIN_TILE_K, N);
  const [perm, block] = grouped ? [SCALE_PERM, 64] : [SCALE_PERM_SINGLE, 32];
  const src = new Int32Array(G * N);
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < N; c++) src[g * N + c] = (c - (c % block) + perm[c % block]!) * G + g;
  }
  return src;
}

/**
 * The zero points: Marlin's I32 `[G, N/8]` as G*N nibbles. Each row is permuted by SCALE_PERM
 * in blocks of 64 (always: "zero-points are applied on every MMA"), then each run of 8 by
 * MARLIN_INTERLEAVE, then packed eight to a word in order (pack_cols): nibble q of word
 * (g, c) holds column `64*floor(c/8) + c%8 + 8*MARLIN_INTERLEAVE[q]`. Returns, for each
 * nibble, the logical element `n*G + g`.
 */
export function marlinZeroSource(G: number, N: number): Int32Array {
  checkTiles(MARLIN_TILE_K, N);
  const src = new Int32Array(G * N);
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < N / 8; c++) {
      for (let q = 0; q < 8; q++) src[(g * (N / 8) + c) * 8 + q] = (64 * Math.floor(c / 8) + (c % 8) + 8 * MARLIN_INTERLEAVE[q]!) * G + g;
    }
  }
  return src;
}

/**
 * Where the canonical form (spec §4) keeps the 4-bit code of logical element (row, col) of a
 * `[rows, cols]` matrix, as a nibble index into its bytes: packed along the columns
 * (compressed-tensors and GPTQ weights: `row*cols + col`), or along the rows, eight rows to a
 * word, nibble q holding row `8j + rowNibbles[q]` (zero points; AWQ's weights in its order).
 */
export interface NibblePacking {
  alongRows: boolean;
  /** Along the rows: the row offset each nibble of a word holds (in order where absent). */
  rowNibbles?: readonly number[];
}

function nibbleIndex(p: NibblePacking, rows: number, cols: number): (row: number, col: number) => number {
  if (!p.alongRows) return (r, c) => r * cols + c;
  const order = p.rowNibbles ?? [0, 1, 2, 3, 4, 5, 6, 7];
  const nibbleOf = order.map((_, q) => order.indexOf(q));
  return (r, c) => ((r >> 3) * cols + c) * 8 + nibbleOf[r & 7]!;
}

const getNibble = (b: Uint8Array, i: number) => (b[i >> 1]! >> ((i & 1) * 4)) & 15;
const setNibble = (b: Uint8Array, i: number, v: number) => {
  b[i >> 1] = (b[i >> 1]! & ((i & 1) ? 0x0f : 0xf0)) | (v << ((i & 1) * 4));
};

/**
 * Moves the 4-bit codes of `slots` matrices of `src.length` codes each: Marlin nibble i of a
 * slot is the canonical nibble `at(src[i])` (packing: `toMarlin`), and back.
 */
function moveNibbles(bytes: Uint8Array, slots: number, src: Int32Array, at: (logical: number) => number, toMarlin: boolean): Uint8Array {
  const per = src.length;
  const out = new Uint8Array(bytes.length);
  for (let s = 0; s < slots; s++) {
    const base = s * per;
    for (let i = 0; i < per; i++) {
      const c = base + at(src[i]!);
      if (toMarlin) setNibble(out, base + i, getNibble(bytes, c));
      else setNibble(out, c, getNibble(bytes, base + i));
    }
  }
  return out;
}

/** Moves whole elements of `elem` bytes: element i of each slot's Marlin order is element src[i] of its logical order. */
function moveElements(bytes: Uint8Array, slots: number, src: Int32Array, elem: number, toMarlin: boolean): Uint8Array {
  const per = src.length;
  const out = new Uint8Array(bytes.length);
  for (let s = 0; s < slots; s++) {
    for (let i = 0; i < per; i++) {
      const [m, l] = [(s * per + i) * elem, (s * per + src[i]!) * elem];
      if (toMarlin) out.set(bytes.subarray(l, l + elem), m);
      else out.set(bytes.subarray(m, m + elem), l);
    }
  }
  return out;
}

/**
 * The codes of `slots` stacked `[N, K]` weights between the canonical bytes (packed as `p`
 * says) and Marlin's `[K/16, 2N]` words: `toMarlin` true packs, false unpacks.
 */
export function marlinWeightBytes(bytes: Uint8Array, slots: number, K: number, N: number, p: NibblePacking, toMarlin: boolean): Uint8Array {
  const src = marlinWeightSource(K, N);
  const at = nibbleIndex(p, N, K);
  return moveNibbles(bytes, slots, src, (l) => at(Math.floor(l / K), l % K), toMarlin);
}

/** `slots` stacked `[N, G]` scales (any dtype of `elem` bytes) to Marlin's `[G, N]` order, or back. */
export function marlinScaleBytes(bytes: Uint8Array, slots: number, G: number, N: number, elem: number, toMarlin: boolean, grouped = G > 1): Uint8Array {
  return moveElements(bytes, slots, marlinScaleSource(G, N, grouped), elem, toMarlin);
}

/** `slots` stacked zero points (canonical `[N/8, G]` words packed along N as `p` says) to Marlin's `[G, N/8]` words, or back. */
export function marlinZeroBytes(bytes: Uint8Array, slots: number, G: number, N: number, p: NibblePacking, toMarlin: boolean): Uint8Array {
  const at = nibbleIndex({ ...p, alongRows: true }, N, G);
  return moveNibbles(bytes, slots, marlinZeroSource(G, N), (l) => at(Math.floor(l / G), l % G), toMarlin);
}

/**
 * The scale order a loader leaves when it permutes with one Marlin scale permutation and the
 * harness undoes the other (the permutation chosen from a wrong K): canonical row n of the
 * result holds row `source(n)` of the true scales. `applied` is the permutation the loader
 * used (true: SCALE_PERM, false: SCALE_PERM_SINGLE); the harness undid the other one.
 */
export function confusedScaleRow(applied: boolean): (n: number) => number {
  const [undone, block] = applied ? [SCALE_PERM_SINGLE, 32] : [SCALE_PERM, 64];
  const inv = new Array<number>(block);
  undone.forEach((v, p) => (inv[v] = p));
  const [perm, pb] = applied ? [SCALE_PERM, 64] : [SCALE_PERM_SINGLE, 32];
  return (n) => {
    const m = n - (n % block) + inv[n % block]!;
    return m - (m % pb) + perm[m % pb]!;
  };
}
