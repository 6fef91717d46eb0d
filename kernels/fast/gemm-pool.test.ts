// The SIMD GEMM against a float64 dot product: every element within γ_K·Σ|a·b| (the
// float32 bound of a K-term sum in any order), for shapes around the 3 × 3 register
// block and K around the 4-lane vector; and the same bits whether one or two threads ran.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FastKernelError, GemmPool, paddedStride, waitForValue, type MatrixRef } from './gemm-pool.js';
import { gamma } from '../../harness/compare/tolerance.js';

const seed = Number(process.env.FC_SEED ?? 42);
const one = GemmPool.create(1);
const two = GemmPool.create(2);
afterAll(async () => {
  await one.dispose();
  await two.dispose();
});

function fill(pool: GemmPool, rows: number, cols: number, values: (i: number) => number): MatrixRef {
  const m = pool.alloc(rows, cols);
  pool.write(m, Float32Array.from({ length: rows * cols }, (_, i) => values(i)));
  return m;
}

/** Runs a·b^T on `pool` and returns C densely, checked against float64 within the bound. */
function checkedProduct(pool: GemmPool, M: number, N: number, K: number, a: (i: number) => number, b: (i: number) => number): Float32Array {
  const mark = pool.mark();
  try {
    const am = fill(pool, M, K, a);
    const bm = fill(pool, N, K, b);
    const cm = pool.alloc(M, N);
    pool.matmulNT(am, bm, cm);
    const cv = pool.view(cm);
    const out = new Float32Array(M * N);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let exact = 0;
        let magnitude = 0;
        for (let k = 0; k < K; k++) {
          const t = Math.fround(a(i * K + k)) * Math.fround(b(j * K + k));
          exact += t;
          magnitude += Math.abs(t);
        }
        const got = cv[i * cm.stride + j]!;
        if (!(Math.abs(got - exact) <= gamma(K) * magnitude)) {
          throw new Error(`C[${i}][${j}] of ${M}×${N}×${K}: ${got} vs ${exact}, bound ${gamma(K) * magnitude}`);
        }
        out[i * N + j] = got;
      }
    }
    return out;
  } finally {
    pool.release(mark);
  }
}

describe('WebAssembly SIMD GEMM', () => {
  it('matches float64 within γ_K for shapes around the register block (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 0, max: 11 }), fc.integer({ min: 1, max: 21 }), fc.integer(), (M, N, K, s) => {
        const v = (i: number) => Math.sin(i * 12.9898 + s) * 2;
        checkedProduct(one, M, N, K, v, (i) => v(i + 7919));
      }),
      { seed, numRuns: 200 },
    );
  });

  it('gives the same bits on one and two threads, at a size that wakes the worker', () => {
    const [M, N, K] = [17, 301, 203];
    const v = (i: number) => Math.cos(i * 0.37) * 0.5;
    const w = (i: number) => Math.sin(i * 0.11);
    expect(Array.from(checkedProduct(two, M, N, K, v, w))).toEqual(Array.from(checkedProduct(one, M, N, K, v, w)));
  });

  it('pads row strides to whole vectors and away from 4 KiB multiples', () => {
    expect(paddedStride(1)).toBe(4);
    expect(paddedStride(1021)).toBe(1024 + 4);
    expect(paddedStride(2048)).toBe(2052);
    expect(paddedStride(2816)).toBe(2816);
  });

  it('refuses operands whose shapes do not fit', () => {
    const mark = one.mark();
    expect(() => one.matmulNT(one.alloc(2, 3), one.alloc(2, 4), one.alloc(2, 2))).toThrow(/shapes do not fit/);
    one.release(mark);
  });
});

// The pool's rendezvous: a worker's store and notify may land at any point of the waiter's
// check-then-wait, including before the waiter sleeps; a lost notify would sleep out the
// whole timeout (once seen as a 120 s test timeout under load).
describe('waitForValue', () => {
  it('returns at once when the value is already there (the worker finished first)', () => {
    const cells = new Int32Array(new SharedArrayBuffer(8));
    Atomics.store(cells, 1, 7);
    expect(() => waitForValue(cells, 1, 7, 600_000)).not.toThrow();
  });

  it('throws FastKernelError instead of hanging when the value never comes', () => {
    const cells = new Int32Array(new SharedArrayBuffer(8));
    expect(() => waitForValue(cells, 0, 1, 20)).toThrow(FastKernelError);
  });

  it('sees every answer of a worker that answers as fast as it can, round after round', async () => {
    // Cell 0: the round the waiter asks for; cell 1: the round the worker answered.
    const cells = new Int32Array(new SharedArrayBuffer(8));
    const rounds = 20_000;
    const worker = new Worker(`
      const { workerData: cells, parentPort } = require('node:worker_threads');
      for (let seen = 0; seen < ${rounds};) {
        Atomics.wait(cells, 0, seen);
        seen = Atomics.load(cells, 0);
        Atomics.store(cells, 1, seen);
        Atomics.notify(cells, 1);
      }
      parentPort.postMessage('done');
    `, { eval: true, workerData: cells });
    const finished = new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    try {
      for (let r = 1; r <= rounds; r++) {
        Atomics.store(cells, 0, r);
        Atomics.notify(cells, 0);
        // A missed notify would sleep out this timeout and throw.
        waitForValue(cells, 1, r, 30_000);
      }
      expect(await finished).toBe('done');
      expect(Atomics.load(cells, 1)).toBe(rounds);
    } finally {
      await worker.terminate();
    }
  });
});
