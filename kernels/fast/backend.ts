// The fast CPU MoE forward (`fast-cpu-wasm`): float32 throughout, the GEMMs in WebAssembly
// SIMD on every core (gemm-pool.ts), the same rank-summing semantics as the float64
// reference (kernels/moe.ts) and the same selection code (kernels/routing.ts). Tokens are
// grouped by expert, so each expert is two GEMMs over the rows that chose it:
// [gate; up] = X_e · W13^T, then Y_e = act(gate, up) · W2^T, scattered back with the
// routing weights. The per-token float work (activation, scatter) is O(T·k·(I + H)) and
// stays in JavaScript; the O(T·k·I·H) work is all in the GEMM.
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { Tensor } from '../../harness/tensor.js';
import type { MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { decodeFloats } from '../../harness/safetensors/codecs.js';
import { activation, CanonicalTensorError } from '../experts.js';
import { ForwardInputError } from '../moe.js';
import { route, sigmoid } from '../routing.js';
import { GemmPool, type MatrixRef } from './gemm-pool.js';
import { ResidentWeights, type StackedMatrices } from './weights.js';

function tensorOf(rank: RankTensors, name: string, shape: number[]): Tensor {
  const t = rank.tensors.get(name);
  if (t === undefined) throw new CanonicalTensorError('canonical tensor missing', { tensor: name, expected: 'present', found: 'absent' });
  const fits = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!fits) throw new CanonicalTensorError('canonical tensor has the wrong shape', { tensor: name, expected: shape, found: t.shape });
  return t;
}

/** A small float tensor (router, biases, gate), checked and decoded to float32. */
function wholeFloats(rank: RankTensors, name: string, shape: number[]): Float32Array {
  const t = tensorOf(rank, name, shape);
  const count = t.shape.reduce((a, b) => a * b, 1);
  let values: Float32Array;
  try {
    values = decodeFloats(t.dtype, t.bytes);
  } catch (e) {
    throw new CanonicalTensorError(`canonical tensor cannot be decoded as floats: ${(e as Error).message}`, { tensor: name, found: t.dtype });
  }
  if (values.length !== count) throw new CanonicalTensorError('canonical tensor byte length does not match its shape', { tensor: name, expected: count, found: values.length });
  return values;
}

/** One rank's expert (and shared-expert) weight matrices, shapes checked, not yet copied. */
interface RankWeights {
  ids: Int32Array;
  w13: StackedMatrices;
  w2: StackedMatrices;
  shared?: { w13: StackedMatrices; w2: StackedMatrices };
}

function rankWeights(sem: MoeSemantics, layer: number, rank: RankTensors): RankWeights {
  const p = `layers.${layer}.`;
  const H = sem.hidden;
  const R = sem.intermediate / rank.req.tpSize;
  const ids = expertIds(rank, `${p}experts.ids`, sem.experts);
  const n = ids.length;
  const stacked = (name: string, count: number, rows: number, cols: number): StackedMatrices => {
    const shape = count === 1 && name.includes('shared') ? [rows, cols] : [count, rows, cols];
    return { tensor: tensorOf(rank, `${p}${name}`, shape), name: `${p}${name}`, count, rows, cols };
  };
  const w: RankWeights = { ids, w13: stacked('experts.w13', n, 2 * R, H), w2: stacked('experts.w2', n, H, R) };
  if (sem.sharedIntermediate > 0) {
    const Rs = sem.sharedIntermediate / rank.req.tpSize;
    w.shared = { w13: stacked('shared.w13', 1, 2 * Rs, H), w2: stacked('shared.w2', 1, H, Rs) };
  }
  return w;
}

function expertIds(rank: RankTensors, name: string, experts: number): Int32Array {
  const t = tensorOf(rank, name, [-1]);
  if (t.dtype !== 'I32' || t.bytes.length !== 4 * t.shape[0]!) {
    throw new CanonicalTensorError('expert ids must be a 1-D I32 tensor', { tensor: name, expected: 'I32 [E_local]', found: `${t.dtype} [${t.shape.join(', ')}]` });
  }
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const ids = Int32Array.from({ length: t.shape[0]! }, (_, i) => view.getInt32(4 * i, true));
  if (ids.some((id, i) => id < 0 || id >= experts || ids.indexOf(id) !== i)) {
    throw new CanonicalTensorError('expert id out of range or repeated', { tensor: name, expected: `distinct ids in 0..${experts - 1}`, found: Array.from(ids) });
  }
  return ids;
}

/** Every (tpRank, epRank) of one TP × EP grid exactly once: a partial sum must not pass for an output. */
function checkRankSet(sem: MoeSemantics, layer: number, ranks: RankTensors[]): void {
  const first = ranks[0];
  if (first === undefined) throw new ForwardInputError('a forward needs at least one rank', { layer, expected: '≥ 1 rank', found: 0 });
  const { tpSize, epSize } = first.req;
  const seen = new Set<string>();
  for (const { req } of ranks) {
    const key = `${req.tpRank}/${req.epRank}`;
    const inRange = req.tpRank >= 0 && req.tpRank < tpSize && req.epRank >= 0 && req.epRank < epSize;
    if (req.tpSize !== tpSize || req.epSize !== epSize || !inRange || seen.has(key)) {
      throw new ForwardInputError('ranks are not one TP × EP set (mixed sizes, out of range or repeated rank)', { layer, expected: `TP ${tpSize} × EP ${epSize}`, found: key });
    }
    seen.add(key);
  }
  if (seen.size !== tpSize * epSize || sem.intermediate % tpSize !== 0 || sem.sharedIntermediate % tpSize !== 0) {
    throw new ForwardInputError('ranks are not a complete TP × EP set whose TP size divides I and Is', { layer, expected: tpSize * epSize, found: seen.size });
  }
}

/** Scratch matrices of one forward, sized for the most rows any GEMM will see. */
interface Scratch {
  x: MatrixRef;
  gathered: MatrixRef;
  hidden13: MatrixRef;
  activated: MatrixRef;
  y: MatrixRef;
}

const withRows = (m: MatrixRef, rows: number): MatrixRef => ({ ...m, rows });

export interface FastCpuOptions {
  /** Threads running the GEMMs (default: the machine's parallelism). */
  threads?: number;
  /** Keep the last forward's weight matrices in memory across forwards (weights.ts says when that is safe). */
  residentWeights?: boolean;
}

export class FastCpuBackend implements MoeBackend {
  readonly name = 'fast-cpu-wasm';
  private readonly pool: GemmPool;
  private readonly resident: ResidentWeights;
  private readonly keepResident: boolean;

  constructor(options: FastCpuOptions = {}) {
    this.pool = GemmPool.create(options.threads);
    this.resident = new ResidentWeights(this.pool);
    this.keepResident = options.residentWeights ?? false;
  }

  get threads(): number {
    return this.pool.threads;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number): Promise<MoeForwardResult> {
    if (!Number.isSafeInteger(tokens) || tokens < 0 || x.length !== tokens * sem.hidden) {
      throw new ForwardInputError('input does not have the shape [tokens, hidden]', { layer, expected: [tokens, sem.hidden], found: x.length });
    }
    checkRankSet(sem, layer, ranks);
    const weights = ranks.map((rank) => rankWeights(sem, layer, rank));
    if (this.keepResident) this.resident.hold(weights.flatMap((w) => (w.shared ? [w.w13, w.w2, w.shared.w13, w.shared.w2] : [w.w13, w.w2])));
    const pool = this.pool;
    const base = pool.mark();
    try {
      return this.forwardIn(sem, layer, ranks, weights, x, tokens);
    } finally {
      pool.release(base);
    }
  }

  private forwardIn(sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], x: Float32Array, tokens: number): MoeForwardResult {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const pool = this.pool;
    const rows = sem.intermediate / ranks[0]!.req.tpSize;
    const sharedRows = sem.sharedIntermediate / ranks[0]!.req.tpSize;
    const widest = Math.max(rows, sharedRows, 1);
    const s: Scratch = {
      x: pool.alloc(tokens, H),
      gathered: pool.alloc(tokens, H),
      hidden13: pool.alloc(tokens, 2 * widest),
      activated: pool.alloc(tokens, widest),
      y: pool.alloc(tokens, Math.max(H, E)),
    };
    pool.write(s.x, x);

    // Router: logits in float32 on the GEMM; selection by the shared routing code.
    const r0 = ranks[0]!;
    const router = pool.alloc(E, H);
    pool.write(router, wholeFloats(r0, `${p}router.weight`, [E, H]));
    pool.matmulNT(s.x, router, s.y);
    const yView = pool.view(s.y);
    const bias = r0.tensors.has(`${p}router.bias`) ? wholeFloats(r0, `${p}router.bias`, [E]) : undefined;
    const logits = new Float32Array(tokens * E);
    for (let t = 0; t < tokens; t++) for (let e = 0; e < E; e++) logits[t * E + e] = yView[t * s.y.stride + e]! + (bias?.[e] ?? 0);
    const correction = r0.tensors.has(`${p}router.correction_bias`) ? wholeFloats(r0, `${p}router.correction_bias`, [E]) : undefined;
    const routing = route(sem, logits, tokens, correction);

    // Which (token, choice) pairs each global expert serves.
    const byExpert: number[][] = Array.from({ length: E }, () => []);
    for (let i = 0; i < tokens * k; i++) byExpert[routing.selected[i]!]!.push(i);

    const output = new Float32Array(tokens * H);
    ranks.forEach((rank, r) => {
      const { ids, w13, w2, shared } = weights[r]!;
      const n = ids.length;
      const w13Bias = rank.tensors.has(`${p}experts.w13_bias`) ? wholeFloats(rank, `${p}experts.w13_bias`, [n, 2 * rows]) : undefined;
      // The down bias belongs to the whole output: only TP rank 0 adds it.
      const w2Bias = rank.tensors.has(`${p}experts.w2_bias`) && rank.req.tpRank === 0 ? wholeFloats(rank, `${p}experts.w2_bias`, [n, H]) : undefined;
      const top = pool.mark();
      const w13m = pool.alloc(2 * rows, H);
      const w2m = pool.alloc(H, rows);
      for (let slot = 0; slot < n; slot++) {
        const pairs = byExpert[ids[slot]!]!;
        if (pairs.length === 0) continue;
        const tokenOf = pairs.map((i) => Math.floor(i / k));
        const inputScale = routing.inputScale ? pairs.map((i) => routing.weights[i]!) : undefined;
        const outputScale = pairs.map((i) => (routing.inputScale ? 1 : routing.weights[i]!));
        const w13s = this.resident.get(w13, slot, w13m);
        const w2s = this.resident.get(w2, slot, w2m);
        this.gatedMlp(sem, s, tokenOf, inputScale, w13s, w2s, rows, sem.activation, w13Bias?.subarray(slot * 2 * rows, (slot + 1) * 2 * rows));
        this.scatter(s, H, tokenOf, outputScale, output, w2Bias?.subarray(slot * H, (slot + 1) * H));
      }
      pool.release(top);
      // The shared expert: once per TP shard, from EP rank 0 only.
      if (shared && rank.req.epRank === 0) this.shared(sem, p, rank, shared, s, tokens, x, output);
    });
    return { output, routerLogits: logits, selected: routing.selected };
  }

  /** y[i] = (act(gate, up) of rows X[tokenOf[i]]·inputScale[i]) · W2^T, into s.y. */
  private gatedMlp(
    sem: MoeSemantics, s: Scratch, tokenOf: number[], inputScale: number[] | undefined,
    w13: MatrixRef, w2: MatrixRef, R: number, act: MoeSemantics['activation'], bias13: Float32Array | undefined,
  ): void {
    const pool = this.pool;
    const M = tokenOf.length;
    const H = sem.hidden;
    const xv = pool.view(s.x);
    const gv = pool.view(s.gathered);
    for (let i = 0; i < M; i++) {
      const src = tokenOf[i]! * s.x.stride;
      const dst = i * s.gathered.stride;
      if (inputScale) {
        const c = inputScale[i]!;
        for (let j = 0; j < H; j++) gv[dst + j] = xv[src + j]! * c;
      } else gv.set(xv.subarray(src, src + H), dst);
    }
    const hidden13 = withRows(s.hidden13, M);
    pool.matmulNT(withRows(s.gathered, M), w13, hidden13);
    const hv = pool.view(hidden13);
    const av = pool.view(s.activated);
    for (let i = 0; i < M; i++) {
      const h = i * hidden13.stride;
      const a = i * s.activated.stride;
      for (let j = 0; j < R; j++) {
        const g = hv[h + j]! + (bias13 ? bias13[j]! : 0);
        const u = hv[h + R + j]! + (bias13 ? bias13[R + j]! : 0);
        av[a + j] = activation(act, g, u);
      }
      // K padding of the next GEMM: a wider expert may have left numbers there.
      av.fill(0, a + R, a + Math.ceil(R / 4) * 4);
    }
    pool.matmulNT(withRows({ ...s.activated, cols: R }, M), w2, withRows(s.y, M));
  }

  /** output[tokenOf[i]] += scale[i] · (y[i] + bias2). */
  private scatter(s: Scratch, H: number, tokenOf: number[], scale: number[], output: Float32Array, bias2: Float32Array | undefined): void {
    const yv = this.pool.view(s.y);
    for (let i = 0; i < tokenOf.length; i++) {
      const o = tokenOf[i]! * H;
      const y = i * s.y.stride;
      const c = scale[i]!;
      for (let j = 0; j < H; j++) output[o + j] = output[o + j]! + c * (yv[y + j]! + (bias2 ? bias2[j]! : 0));
    }
  }

  private shared(sem: MoeSemantics, p: string, rank: RankTensors, mlp: { w13: StackedMatrices; w2: StackedMatrices }, s: Scratch, tokens: number, x: Float32Array, output: Float32Array): void {
    const H = sem.hidden;
    const R = mlp.w2.cols;
    const pool = this.pool;
    const top = pool.mark();
    const w13 = this.resident.get(mlp.w13, 0, pool.alloc(2 * R, H));
    const w2 = this.resident.get(mlp.w2, 0, pool.alloc(H, R));
    const gate = sem.sharedGate ? wholeFloats(rank, `${p}shared.gate`, [1, H]) : undefined;
    const all = Array.from({ length: tokens }, (_, t) => t);
    this.gatedMlp(sem, s, all, undefined, w13, w2, R, { kind: 'silu_gated' }, undefined);
    const scale = all.map((t) => {
      if (!gate) return 1;
      let z = 0;
      for (let c = 0; c < H; c++) z += x[t * H + c]! * gate[c]!;
      return sigmoid(z);
    });
    this.scatter(s, H, all, scale, output, undefined);
    pool.release(top);
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }
}
