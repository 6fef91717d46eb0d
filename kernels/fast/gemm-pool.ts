// The SIMD GEMM of gemm-module.ts run on several threads over one shared WebAssembly
// memory. The calling thread computes the first share itself and worker threads the rest;
// they meet through Atomics on a control block at the bottom of the memory, not through
// messages, so a GEMM costs no event-loop round trip. Work is split by output columns
// (rows of the weight), claimed chunk by chunk by whichever thread is free: each thread
// streams its own part of the big matrix.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { MoeConformanceError } from '../../harness/errors.js';
import { gemmModuleBytes, MAX_PAGES, NR } from './gemm-module.js';
import { wasm, type WasmMemory } from './wasm-api.js';

/** A fast-path failure that is not the input's fault: a worker died, timed out or trapped. */
export class FastKernelError extends MoeConformanceError {}

const PAGE = 65536;
/** Int32 fields per worker in the control block: generation, done, status, 11 arguments. */
const SLOT = 16;
const [GEN, DONE, STATUS, ARGS] = [0, 1, 2, 3];
const CONTROL_BYTES = 4096;
/** Byte address of the column counter that the threads claim chunks from. */
const COUNTER = CONTROL_BYTES - 64;
/** Claims per thread and GEMM: enough to even out a busy core, few enough to be cheap. */
const CLAIMS_PER_THREAD = 8;
/** A worker that does not answer within this time is treated as dead (never hang). */
const WORKER_TIMEOUT_MS = 120_000;

// Plain JavaScript evaluated in each worker: instantiate the module on the shared memory,
// then wait for a generation bump, run `gemm_nt` with the slot's arguments, report.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, slot } = workerData;
const gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm_nt;
const ctrl = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
const base = slot * ${SLOT};
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, base + ${GEN}, seen);
  seen = Atomics.load(ctrl, base + ${GEN});
  if (seen < 0) break;
  let status = 0;
  try {
    const a = ctrl.subarray(base + ${ARGS}, base + ${ARGS} + 11);
    gemm(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]);
  } catch {
    status = 1;
  }
  Atomics.store(ctrl, base + ${STATUS}, status);
  Atomics.store(ctrl, base + ${DONE}, seen);
  Atomics.notify(ctrl, base + ${DONE});
}
`;

/**
 * Blocks until `cells[index]` holds `want`, or throws after `timeoutMs` (never hang). The
 * wait compares against the value just checked, not a fresh read: a store and notify landing
 * between the check and the wait then make the wait return at once, where sleeping on the
 * freshly read (already final) value would miss that notify and sleep out the whole timeout.
 */
export function waitForValue(cells: Int32Array, index: number, want: number, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let seen = Atomics.load(cells, index); seen !== want; seen = Atomics.load(cells, index)) {
    const left = deadline - Date.now();
    // Timed out: the value stayed `seen` all along, so the worker did not answer in time.
    if (left <= 0 || Atomics.wait(cells, index, seen, left) === 'timed-out') {
      throw new FastKernelError('GEMM worker did not answer', { expected: `${want} within ${timeoutMs} ms`, found: Atomics.load(cells, index) });
    }
  }
}

/** A row-major f32 matrix in the shared memory; `stride` (floats) ≥ `cols`, a multiple of 4. */
export interface MatrixRef {
  offset: number;
  rows: number;
  cols: number;
  stride: number;
}

/**
 * The row stride for `cols` floats: a multiple of 4 (whole f32x4 loads), and never a
 * multiple of 4 KiB, whose rows would alias in L1 (measured: 2.5× slower at K = 1024).
 */
export function paddedStride(cols: number): number {
  const s = Math.ceil(cols / 4) * 4;
  return (s * 4) % 4096 === 0 ? s + 4 : s;
}

export class GemmPool {
  readonly threads: number;
  private readonly memory: WasmMemory;
  private readonly gemm: (...args: number[]) => void;
  private readonly workers: Worker[];
  private readonly generation: number[];
  private top = CONTROL_BYTES;
  private disposed = false;

  private constructor(threads: number) {
    this.threads = threads;
    const module = new wasm.Module(gemmModuleBytes());
    this.memory = new wasm.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    this.gemm = new wasm.Instance(module, { env: { memory: this.memory } }).exports.gemm_nt as (...args: number[]) => void;
    this.workers = Array.from({ length: threads - 1 }, (_, slot) => {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory: this.memory, slot } });
      w.unref();
      return w;
    });
    this.generation = this.workers.map(() => 0);
  }

  /** `threads` defaults to the machine's parallelism. */
  static create(threads = availableParallelism()): GemmPool {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new FastKernelError('thread count must be an integer in 1..64', { expected: '1..64', found: threads });
    }
    return new GemmPool(threads);
  }

  /** The arena's current top: matrices allocated after it are freed by `release(mark)`. */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** Allocates a zeroed `rows × cols` matrix with a padded stride, growing the memory as needed. */
  alloc(rows: number, cols: number): MatrixRef {
    const stride = paddedStride(cols);
    const bytes = rows * stride * 4;
    const offset = this.top;
    const end = offset + bytes;
    if (!Number.isSafeInteger(end) || end > MAX_PAGES * PAGE) {
      throw new FastKernelError('fast path needs more than the 4 GiB a 32-bit WebAssembly memory can address', { expected: `≤ ${MAX_PAGES * PAGE} bytes`, found: end });
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = Math.ceil(end / 64) * 64;
    const m = { offset, rows, cols, stride };
    this.view(m).fill(0);
    return m;
  }

  /** The matrix's floats (padding included), as a view on the shared memory. */
  view(m: MatrixRef): Float32Array {
    return new Float32Array(this.memory.buffer, m.offset, m.rows * m.stride);
  }

  /** Copies `rows × cols` floats stored densely in `src` into `m`, leaving the padding zero. */
  write(m: MatrixRef, src: Float32Array): void {
    const v = this.view(m);
    if (m.stride === m.cols) v.set(src.subarray(0, m.rows * m.cols));
    else for (let r = 0; r < m.rows; r++) v.set(src.subarray(r * m.cols, (r + 1) * m.cols), r * m.stride);
  }

  /** Copies `rows × cols` little-endian f32 values given as bytes (any alignment) into `m`. */
  writeBytes(m: MatrixRef, src: Uint8Array): void {
    const rowBytes = m.cols * 4;
    const dst = new Uint8Array(this.memory.buffer, m.offset, m.rows * m.stride * 4);
    if (m.stride === m.cols) dst.set(src.subarray(0, m.rows * rowBytes));
    else for (let r = 0; r < m.rows; r++) dst.set(src.subarray(r * rowBytes, (r + 1) * rowBytes), r * m.stride * 4);
  }

  /**
   * `c[:, 0:b.rows] = a · b^T` over K = a.cols = b.cols, split across the threads. Both
   * operands must hold zeros in the columns from K to the next multiple of 4.
   */
  matmulNT(a: MatrixRef, b: MatrixRef, c: MatrixRef): void {
    if (this.disposed) throw new FastKernelError('GEMM pool used after dispose');
    if (a.cols !== b.cols || c.rows !== a.rows || c.cols < b.rows) {
      throw new FastKernelError('GEMM operand shapes do not fit', { expected: `[M,K]·[N,K]^T → [M,≥N]`, found: [[a.rows, a.cols], [b.rows, b.cols], [c.rows, c.cols]] });
    }
    const M = a.rows;
    const N = b.rows;
    if (M === 0 || N === 0) return;
    // K runs to the next multiple of 4; both operands' padding there is zero.
    const kBytes = Math.ceil(a.cols / 4) * 16;
    const blocks = Math.ceil(N / NR);
    // Small products stay on this thread: waking a worker costs more than they do.
    const helpers = Math.min(this.workers.length, blocks - 1, Math.floor((M * N * a.cols) / 2e5));
    const chunk = NR * Math.max(1, Math.ceil(blocks / ((helpers + 1) * CLAIMS_PER_THREAD)));
    const args = [a.offset, b.offset, c.offset, M, N, kBytes, a.stride * 4, b.stride * 4, c.stride * 4, COUNTER, chunk];
    const ctrl = new Int32Array(this.memory.buffer, 0, CONTROL_BYTES / 4);
    Atomics.store(ctrl, COUNTER / 4, 0);
    for (let w = 0; w < helpers; w++) {
      const base = w * SLOT;
      ctrl.set(args, base + ARGS);
      this.generation[w]! += 1;
      Atomics.store(ctrl, base + GEN, this.generation[w]!);
      Atomics.notify(ctrl, base + GEN);
    }
    this.gemm(...args);
    for (let w = 0; w < helpers; w++) {
      const base = w * SLOT;
      waitForValue(ctrl, base + DONE, this.generation[w]!, WORKER_TIMEOUT_MS);
      if (Atomics.load(ctrl, base + STATUS) !== 0) throw new FastKernelError('GEMM worker trapped', { expected: 'status 0', found: ctrl[base + STATUS] });
    }
  }

  /** Stops the workers. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const ctrl = new Int32Array(this.memory.buffer, 0, CONTROL_BYTES / 4);
    for (let w = 0; w < this.workers.length; w++) {
      Atomics.store(ctrl, w * SLOT + GEN, -1);
      Atomics.notify(ctrl, w * SLOT + GEN);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
