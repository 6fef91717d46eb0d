// FP8 block-scaled weights (DeepSeek-V3 style, `quant_method: "fp8"`). A weight [R, C] is
// stored as F8_E4M3 with `weight_scale_inv` [ceil(R/bm), ceil(C/bn)] (F32, or F8_E8M0 where
// `scale_fmt` is ue8m0), and W[i][j] = q[i][j] * s[floor(i/bm)][floor(j/bn)]: the scale
// multiplies despite its name, and the last block of an axis is partial when the size is
// not a multiple of the block (DeepSeek's `weight_dequant` kernel masks the edge; it does
// not stretch the blocks to fit).
//
// Under TP a rank holds a slice of rows (w13) or columns (w2) that may start or end inside
// a block. It then holds every scale row (column) its slice touches, so a block straddling
// two ranks has its scale on both, and its local row 0 sits `origin` rows into the first
// block it holds.
import { decodeElements } from './elements.js';
import type { DType } from '../safetensors/dtypes.js';
import type { Tensor } from '../tensor.js';
import { QuantConfigError, QuantizedWeightError, ScaleMismatch } from './errors.js';

/** `weight_block_size`: rows then columns of one scale block. */
export interface BlockSize {
  rows: number;
  cols: number;
}

/** Larger blocks than this are refused: no checkpoint uses them, and shapes stay bounded. */
export const MAX_BLOCK_EDGE = 1 << 16;

export const FP8_WEIGHT_DTYPES: readonly DType[] = ['F8_E4M3'];
export const FP8_SCALE_DTYPES: readonly DType[] = ['F32', 'BF16', 'F8_E8M0'];

/** `weight_block_size` of a quantization_config, checked. */
export function parseBlockSize(v: unknown): BlockSize {
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1 && x <= MAX_BLOCK_EDGE;
  if (!Array.isArray(v) || v.length !== 2 || !ok(v[0]) || !ok(v[1])) {
    throw new QuantConfigError('weight_block_size must be two integers in [1, 65536]', { expected: '[rows, cols]', found: v });
  }
  return { rows: v[0], cols: v[1] };
}

/** The scale blocks an axis slice [start, start + length) touches, and where `start` lies in the first. */
export interface BlockSpan {
  first: number;
  count: number;
  origin: number;
}

export function blockSpan(start: number, length: number, block: number): BlockSpan {
  const first = Math.floor(start / block);
  const end = Math.ceil((start + length) / block);
  return { first, count: end - first, origin: start - first * block };
}

/** Scale spans of TP rank `rank` of `tpSize`: w13 rows of each of gate and up, and w2 columns. */
export function fp8TpSpans(intermediate: number, tpSize: number, rank: number, block: BlockSize): { w13Rows: BlockSpan; w2Cols: BlockSpan } {
  const per = intermediate / tpSize;
  return { w13Rows: blockSpan(rank * per, per, block.rows), w2Cols: blockSpan(rank * per, per, block.cols) };
}

/** One weight matrix and where its local row 0 and column 0 lie inside their first scale blocks. */
export interface Fp8Matrix {
  rows: number;
  cols: number;
  rowOrigin: number;
  colOrigin: number;
}

/** Scale grid [rows, cols] a matrix needs. */
export function scaleGrid(m: Fp8Matrix, block: BlockSize): [number, number] {
  return [blockSpan(m.rowOrigin, m.rows, block.rows).count, blockSpan(m.colOrigin, m.cols, block.cols).count];
}

/**
 * W = q * s for one matrix, into `out` at `outOffset` (float32: q and s are float32 values,
 * so their product is exact in a double and `fround` rounds it once, like torch's f32 multiply).
 */
function dequantizeMatrix(
  q: Float32Array,
  qOffset: number,
  s: Float32Array,
  sOffset: number,
  sCols: number,
  m: Fp8Matrix,
  block: BlockSize,
  out: Float32Array,
  outOffset: number,
): void {
  for (let i = 0; i < m.rows; i++) {
    const sRow = sOffset + Math.floor((m.rowOrigin + i) / block.rows) * sCols;
    const base = i * m.cols;
    for (let j = 0; j < m.cols; j++) {
      const scale = s[sRow + Math.floor((m.colOrigin + j) / block.cols)]!;
      out[outOffset + base + j] = Math.fround(q[qOffset + base + j]! * scale);
    }
  }
}

function checkDtype(t: Tensor, allowed: readonly DType[], name: string, what: 'weight' | 'scale'): void {
  if (!allowed.includes(t.dtype)) {
    const E = what === 'weight' ? QuantizedWeightError : ScaleMismatch;
    throw new E(`FP8 ${what} has an unexpected dtype`, { tensor: name, expected: allowed.join('|'), found: t.dtype });
  }
}

/**
 * Dequantizes a stack of matrices `[..., R, C]` whose scales `[..., SR, SC]` are laid out as
 * `parts` matrices of `R/parts` rows each, one after the other along R, each with its own
 * scale rows (w13: gate then up, `parts` = 2; w2 and per-expert weights: `parts` = 1).
 */
export function dequantizeFp8(
  weight: Tensor,
  scale: Tensor,
  opts: { block: BlockSize; parts: number; rowOrigin: number; colOrigin: number; name: string },
): Tensor {
  const { block, parts, name } = opts;
  checkDtype(weight, FP8_WEIGHT_DTYPES, name, 'weight');
  checkDtype(scale, FP8_SCALE_DTYPES, `${name}_scale`, 'scale');
  const rank = weight.shape.length;
  if (rank < 2 || scale.shape.length !== rank) {
    throw new ScaleMismatch('FP8 weight and scale must have the same number of dimensions (at least 2)', {
      tensor: name,
      expected: `scale of rank ${rank}`,
      found: scale.shape,
    });
  }
  const R = weight.shape[rank - 2]!;
  const C = weight.shape[rank - 1]!;
  if (R % parts !== 0) throw new ScaleMismatch(`FP8 weight rows do not split into ${parts} parts`, { tensor: name, expected: `rows % ${parts} == 0`, found: R });
  const m: Fp8Matrix = { rows: R / parts, cols: C, rowOrigin: opts.rowOrigin, colOrigin: opts.colOrigin };
  const [gr, gc] = scaleGrid(m, block);
  const want = [...weight.shape.slice(0, -2), gr * parts, gc];
  if (want.some((d, i) => d !== scale.shape[i])) {
    throw new ScaleMismatch('FP8 scale grid does not fit the weight and block size', {
      tensor: `${name}_scale`,
      expected: want,
      found: scale.shape,
    });
  }
  const q = decodeElements(weight, name);
  const s = decodeElements(scale, `${name}_scale`);
  const out = new Float32Array(q.length);
  const matrixSize = m.rows * C;
  for (let k = 0; matrixSize > 0 && k < q.length / matrixSize; k++) {
    dequantizeMatrix(q, k * matrixSize, s, k * gr * gc, gc, m, block, out, k * matrixSize);
  }
  return { dtype: 'F32', shape: weight.shape.slice(), bytes: new Uint8Array(out.buffer) };
}
