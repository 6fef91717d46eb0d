// The WebAssembly SIMD GEMM `C = A · B^T`, emitted as bytes. Both operands are K-contiguous
// (A is `[M, K]` gathered tokens, B is a `[N, K]` weight exactly as the canonical form
// stores it), so no panel packing is needed: a register-blocked micro-kernel keeps an
// MR × NR block of f32x4 partial dot products in registers, streams four K values of each
// row per step, and reduces the lanes once at the end. K is padded to a multiple of four
// with zeros by the caller. x86-64 V8 has 16 vector registers: 3 × 3 accumulators plus 3
// A vectors and 1 B vector fit without spilling.
import { emitModule, I32, op, V128, type FunctionDef } from './wasm-emitter.js';

export const MR = 3;
export const NR = 3;
/** 4 GiB: the whole 32-bit address space, reserved (not committed) up front for a shared memory. */
export const MAX_PAGES = 65536;

/** `tile(a, b, c, kBytes, lda, ldb, ldc)`: C[i][j] = Σ_k A[i][k]·B[j][k] for i < mr, j < nr. */
function tile(mr: number, nr: number): FunctionDef {
  const [a, b, c, kBytes, lda, ldb, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const k = 7;
  const aPtr = (i: number) => 8 + i;
  const bPtr = (j: number) => 8 + mr + j;
  const aVec = (i: number) => 8 + mr + nr + i;
  const bVec = 8 + 2 * mr + nr;
  const acc = (i: number, j: number) => 9 + 2 * mr + nr + i * nr + j;
  const rows = Array.from({ length: mr }, (_, i) => i);
  const cols = Array.from({ length: nr }, (_, j) => j);
  const offsetRow = (base: number, stride: number, i: number, target: number) => [
    ...op.localGet(base), ...op.localGet(stride), ...op.i32Const(i), ...op.i32Mul, ...op.i32Add, ...op.localSet(target),
  ];
  const body: number[][] = [
    ...rows.map((i) => offsetRow(a, lda, i, aPtr(i))),
    ...cols.map((j) => offsetRow(b, ldb, j, bPtr(j))),
    op.block, op.loop,
    [...op.localGet(k), ...op.localGet(kBytes), ...op.i32GeU, ...op.brIf(1)],
    ...rows.map((i) => [...op.localGet(aPtr(i)), ...op.localGet(k), ...op.i32Add, ...op.v128Load(), ...op.localSet(aVec(i))]),
    ...cols.flatMap((j) => [
      [...op.localGet(bPtr(j)), ...op.localGet(k), ...op.i32Add, ...op.v128Load(), ...op.localSet(bVec)],
      ...rows.map((i) => [
        ...op.localGet(acc(i, j)), ...op.localGet(aVec(i)), ...op.localGet(bVec), ...op.f32x4Mul, ...op.f32x4Add, ...op.localSet(acc(i, j)),
      ]),
    ]),
    [...op.localGet(k), ...op.i32Const(16), ...op.i32Add, ...op.localSet(k), ...op.br(0)],
    op.end, op.end,
    ...rows.flatMap((i) => cols.map((j) => {
      const lane = (l: number) => [...op.localGet(acc(i, j)), ...op.f32x4ExtractLane(l)];
      return [
        ...op.localGet(c), ...op.localGet(ldc), ...op.i32Const(i), ...op.i32Mul, ...op.i32Add,
        ...lane(0), ...lane(1), ...op.f32Add, ...lane(2), ...lane(3), ...op.f32Add, ...op.f32Add,
        ...op.f32Store(4 * j),
      ];
    })),
  ];
  return {
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, ...rows.map(() => I32), ...cols.map(() => I32), ...rows.map(() => V128), V128, ...rows.flatMap(() => cols.map(() => V128))],
    body,
  };
}

/**
 * `gemm_nt(a, b, c, M, N, kBytes, lda, ldb, ldc, counter, chunk)`: every thread calling it
 * at once claims `chunk` columns at a time by an atomic add on the i32 at `counter`, until
 * all N columns of C are done. Claiming (not a fixed split) keeps both cores busy when one
 * of them is also serving another process. Within a claim: column blocks outside, row
 * blocks inside, so that an NR-row block of B stays in L1 while A streams from L2. Edge
 * blocks dispatch to smaller tiles through the table. Strides are in bytes.
 */
function gemm(tileType: number): FunctionDef {
  const [a, b, c, M, N, kBytes, lda, ldb, ldc, counter, chunk] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [i, j, mr, nr, n1] = [11, 12, 13, 14, 15];
  const minInto = (limit: number[], remaining: number[], target: number) => [
    ...remaining, ...limit, ...remaining, ...limit, ...op.i32LtU, ...op.select, ...op.localSet(target),
  ];
  const mulAdd = (base: number, index: number, stride: number) => [
    ...op.localGet(base), ...op.localGet(index), ...op.localGet(stride), ...op.i32Mul, ...op.i32Add,
  ];
  return {
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, I32, I32, I32],
    exportName: 'gemm_nt',
    body: [
      op.block, op.loop,
      [...op.localGet(counter), ...op.localGet(chunk), ...op.i32AtomicRmwAdd(), ...op.localTee(j), ...op.localGet(N), ...op.i32GeU, ...op.brIf(1)],
      minInto(op.localGet(chunk), [...op.localGet(N), ...op.localGet(j), ...op.i32Sub], n1),
      [...op.localGet(n1), ...op.localGet(j), ...op.i32Add, ...op.localSet(n1)],
      op.block, op.loop,
      [...op.localGet(j), ...op.localGet(n1), ...op.i32GeU, ...op.brIf(1)],
      minInto(op.i32Const(NR), [...op.localGet(n1), ...op.localGet(j), ...op.i32Sub], nr),
      [...op.i32Const(0), ...op.localSet(i)],
      op.block, op.loop,
      [...op.localGet(i), ...op.localGet(M), ...op.i32GeU, ...op.brIf(1)],
      minInto(op.i32Const(MR), [...op.localGet(M), ...op.localGet(i), ...op.i32Sub], mr),
      mulAdd(a, i, lda),
      mulAdd(b, j, ldb),
      [...mulAdd(c, i, ldc), ...op.localGet(j), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add],
      [...op.localGet(kBytes), ...op.localGet(lda), ...op.localGet(ldb), ...op.localGet(ldc)],
      [...op.localGet(mr), ...op.i32Const(1), ...op.i32Sub, ...op.i32Const(NR), ...op.i32Mul, ...op.localGet(nr), ...op.i32Const(1), ...op.i32Sub, ...op.i32Add],
      op.callIndirect(tileType),
      [...op.localGet(i), ...op.i32Const(MR), ...op.i32Add, ...op.localSet(i), ...op.br(0)],
      op.end, op.end,
      [...op.localGet(j), ...op.i32Const(NR), ...op.i32Add, ...op.localSet(j), ...op.br(0)],
      op.end, op.end,
      op.br(0),
      op.end, op.end,
    ],
  };
}

/** The compiled module; instantiate it with `{ env: { memory } }` (a shared memory of MAX_PAGES). */
export function gemmModuleBytes(): Uint8Array {
  const tiles: FunctionDef[] = [];
  for (let mr = 1; mr <= MR; mr++) for (let nr = 1; nr <= NR; nr++) tiles.push(tile(mr, nr));
  return emitModule({ memoryMaxPages: MAX_PAGES, functions: [...tiles, gemm(0)], table: tiles.map((_, i) => i) });
}
