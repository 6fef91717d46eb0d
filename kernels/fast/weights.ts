// Getting weight matrices into the GEMM's shared memory. Streaming (the default) copies
// each expert's matrices into scratch space right before its GEMMs, so memory stays at
// one expert's size. Residency (opt-in) keeps every matrix of the last forward's tensors
// in the memory, keyed by the Tensor objects, so that repeated forwards on the same
// weights (benchmarks, serving) skip the copy; it assumes tensors are not mutated in place
// between forwards, which is why it is not the default for conformance runs.
import type { Tensor } from '../../harness/tensor.js';
import { matrixBytesF32, type StackedMatrices } from './canonical.js';
import { FastKernelError, type GemmPool, type MatrixRef } from './gemm-pool.js';

/** Copies matrix `index` of `w` into `target`. */
function loadMatrix(pool: GemmPool, w: StackedMatrices, index: number, target: MatrixRef): void {
  pool.writeBytes(target, matrixBytesF32(w, index));
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
