// Getting weight matrices into the GEMM's shared memory. Streaming (the default) copies
// each expert's matrices into scratch space right before its GEMMs, so memory stays at
// one expert's size. Residency (opt-in) keeps every matrix of the last forward's tensors
// in the memory, keyed by the Tensor objects, so that repeated forwards on the same
// weights (benchmarks, serving) skip the copy; it assumes tensors are not mutated in place
// between forwards, which is why it is not the default for conformance runs.
import type { Tensor } from '../../harness/tensor.js';
import { decodeFloats } from '../../harness/safetensors/codecs.js';
import { CanonicalTensorError } from '../experts.js';
import { FastKernelError, type GemmPool, type MatrixRef } from './gemm-pool.js';

/** `count` stacked `rows × cols` matrices of a canonical tensor. */
export interface StackedMatrices {
  tensor: Tensor;
  name: string;
  count: number;
  rows: number;
  cols: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Copies matrix `index` of `w` into `target` (F32 bytes straight, other dtypes decoded). */
export function loadMatrix(pool: GemmPool, w: StackedMatrices, index: number, target: MatrixRef): void {
  const n = w.rows * w.cols;
  const bytesPer = w.tensor.bytes.length / (w.count * n);
  if (!Number.isInteger(bytesPer) || bytesPer < 1) {
    throw new CanonicalTensorError('canonical tensor byte length does not fit whole elements', { tensor: w.name, expected: `${w.count * n} elements`, found: w.tensor.bytes.length });
  }
  const bytes = w.tensor.bytes.subarray(index * n * bytesPer, (index + 1) * n * bytesPer);
  if (w.tensor.dtype === 'F32' && LITTLE_ENDIAN) {
    pool.writeBytes(target, bytes);
    return;
  }
  let values: Float32Array;
  try {
    values = decodeFloats(w.tensor.dtype, bytes);
  } catch (e) {
    throw new CanonicalTensorError(`canonical tensor cannot be decoded as floats: ${(e as Error).message}`, { tensor: w.name, found: w.tensor.dtype });
  }
  pool.write(target, values);
}

export class ResidentWeights {
  private readonly matrices = new Map<Tensor, MatrixRef[]>();
  private bottom: number | undefined;

  constructor(private readonly pool: GemmPool) {}

  /**
   * Makes every matrix of `all` resident, replacing what was resident unless it is the
   * same tensors. When they do not fit in the 4 GiB memory, nothing stays resident and the
   * forward streams instead. Call before allocating scratch space.
   */
  hold(all: StackedMatrices[]): void {
    if (all.every((w) => this.matrices.has(w.tensor))) return;
    this.bottom ??= this.pool.mark();
    this.pool.release(this.bottom);
    this.matrices.clear();
    try {
      for (const w of all) {
        const list = Array.from({ length: w.count }, () => this.pool.alloc(w.rows, w.cols));
        list.forEach((m, i) => loadMatrix(this.pool, w, i, m));
        this.matrices.set(w.tensor, list);
      }
    } catch (e) {
      this.pool.release(this.bottom);
      this.matrices.clear();
      if (!(e instanceof FastKernelError)) throw e;
    }
  }

  /** Matrix `index` of `w`: the resident copy, or else a copy into `scratch`. */
  get(w: StackedMatrices, index: number, scratch: MatrixRef): MatrixRef {
    const held = this.matrices.get(w.tensor)?.[index];
    if (held) return held;
    loadMatrix(this.pool, w, index, scratch);
    return scratch;
  }
}
