// The fast CPU MoE forward (`fast-cpu-wasm`): float32 throughout, the GEMMs in WebAssembly
// SIMD on every core (gemm-pool.ts), the same rank-summing semantics as the float64
// reference (kernels/moe.ts) and the same selection code (kernels/routing.ts). Tokens are
// grouped by expert, so each expert is two GEMMs over the rows that chose it:
// [gate; up] = X_e · W13^T, then Y_e = act(gate, up) · W2^T, scattered back with the
// routing weights. The per-token float work (activation, scatter) is O(T·k·(I + H)) and
// stays in JavaScript; the O(T·k·I·H) work is all in the GEMM.
import { atLayer, SILU_GATED, type ExpertActivation, type MoeSemantics } from '../../harness/layouts/semantics.js';
import { kernelForm } from '../kernel-form.js';
import type { ForwardInputs, MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { activation } from '../experts.js';
import { addZeroExperts, hashChoiceOf } from '../routing.js';
import { mlpRouterLogitsF32 } from '../mlp-router.js';
import { applyOutputNorm } from '../output-norm.js';
import { blockInputsF32, routedSharedPieces } from '../block-inputs.js';
import { checkForwardInput } from '../moe.js';
import { expertBatches, expertBiases, rankWeights, routeLogits, sharedBatch, sharedPieceMatrices, wholeFloats, type ExpertBatch, type RankWeights } from './canonical.js';
import { GemmPool, type MatrixRef } from './gemm-pool.js';
import { ResidentWeights } from './weights.js';

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

  describe(): string {
    return `WebAssembly SIMD GEMM on ${this.pool.threads} thread(s), float32`;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, inputs?: ForwardInputs): Promise<MoeForwardResult> {
    sem = atLayer(sem, layer);
    checkForwardInput(sem, layer, ranks, x, tokens);
    hashChoiceOf(sem, layer, ranks[0]!, tokens, inputs);
    ranks = kernelForm(sem, ranks);
    const weights = ranks.map((rank) => rankWeights(sem, layer, rank));
    if (this.keepResident) this.resident.hold(weights.flatMap((w) => (w.shared ? [w.w13, w.w2, w.shared.w13, w.shared.w2] : [w.w13, w.w2])));
    const pool = this.pool;
    const base = pool.mark();
    try {
      return this.forwardIn(sem, layer, ranks, weights, x, tokens, inputs);
    } finally {
      pool.release(base);
    }
  }

  private forwardIn(sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], x: Float32Array, tokens: number, inputs: ForwardInputs | undefined): MoeForwardResult {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const pool = this.pool;
    const widest = Math.max(...weights.map((w) => Math.max(w.w2.cols, w.shared?.w2.cols ?? 0)), 1);
    const s: Scratch = {
      x: pool.alloc(tokens, H),
      gathered: pool.alloc(tokens, H),
      hidden13: pool.alloc(tokens, 2 * widest),
      activated: pool.alloc(tokens, widest),
      y: pool.alloc(tokens, Math.max(H, sem.routerRows ?? E)),
    };
    // Router and experts read their own inputs where the block normalises them (gemma4).
    const r0 = ranks[0]!;
    const normed = blockInputsF32(sem, layer, r0, x, tokens);
    pool.write(s.x, normed.router);

    // Router: logits in float32 on the GEMM; selection by the shared routing code.
    let logits: Float32Array;
    if (sem.mlpRouter) logits = mlpRouterLogitsF32(sem, layer, r0, normed.router, tokens, inputs);
    else {
      // Router rows: the experts, or doge's 2·keys product keys.
      const rows = sem.routerRows ?? E;
      const router = pool.alloc(rows, H);
      pool.write(router, wholeFloats(r0, `${p}router.weight`, [rows, H]));
      pool.matmulNT(s.x, router, s.y);
      const yView = pool.view(s.y);
      logits = new Float32Array(tokens * rows);
      for (let t = 0; t < tokens; t++) for (let e = 0; e < rows; e++) logits[t * rows + e] = yView[t * s.y.stride + e]!;
    }
    const routing = routeLogits(sem, layer, r0, logits, tokens, hashChoiceOf(sem, layer, r0, tokens, inputs));
    if (normed.experts !== normed.router) pool.write(s.x, normed.experts);
    x = normed.experts;

    const output = new Float32Array(tokens * H);
    ranks.forEach((rank, r) => {
      const { ids, w13, w2, shared } = weights[r]!;
      const n = ids.length;
      const R = w2.cols;
      const bias = expertBiases(layer, rank, n, R, H);
      const top = pool.mark();
      const w13Scratch = pool.alloc(2 * R, H);
      const w2Scratch = pool.alloc(H, R);
      for (const batch of expertBatches(routing, ids, tokens, k)) {
        const slot = batch.slot;
        const w13m = this.resident.get(w13, slot, w13Scratch);
        const w2m = this.resident.get(w2, slot, w2Scratch);
        this.gatedMlp(s, H, batch, w13m, w2m, sem.activation, bias.w13?.subarray(slot * 2 * R, (slot + 1) * 2 * R));
        this.scatter(s, H, batch, output, bias.w2?.subarray(slot * H, (slot + 1) * H));
      }
      // The shared expert: once per TP shard, from EP rank 0 only.
      if (shared && rank.req.epRank === 0) {
        const Rs = shared.w2.cols;
        const batch = sharedBatch(x, tokens, H, sem.sharedGate ? wholeFloats(rank, `${p}shared.gate`, [1, H]) : undefined, sem.sharedScale);
        // inkling: each router-weighted shared expert's rows, weighted token by token by its routing weight.
        for (const piece of routedSharedPieces(sem, routing, rank.req.tpRank, Rs) ?? [undefined]) {
          const w = piece ? sharedPieceMatrices(shared.w13, shared.w2, H, Rs, piece.rows) : shared;
          if (piece) batch.outputScale.set(piece.weights);
          const w13m = this.resident.get(w.w13, 0, pool.alloc(w.w13.rows, H));
          const w2m = this.resident.get(w.w2, 0, pool.alloc(H, w.w2.cols));
          this.gatedMlp(s, H, batch, w13m, w2m, sem.sharedActivation ?? SILU_GATED, undefined);
          this.scatter(s, H, batch, output, undefined);
        }
      }
      pool.release(top);
    });
    addZeroExperts(sem, routing, x, tokens, output);
    applyOutputNorm(sem, layer, ranks, tokens, output);
    return { output, routerLogits: logits, selected: routing.selected };
  }

  /** s.y[i] = act(gate, up of X[tokens[i]]·inputScale[i]) · W2^T. */
  private gatedMlp(s: Scratch, H: number, batch: ExpertBatch, w13: MatrixRef, w2: MatrixRef, act: ExpertActivation, bias13: Float32Array | undefined): void {
    const pool = this.pool;
    const M = batch.tokens.length;
    const R = w2.cols;
    const xv = pool.view(s.x);
    const gv = pool.view(s.gathered);
    for (let i = 0; i < M; i++) {
      const src = batch.tokens[i]! * s.x.stride;
      const dst = i * s.gathered.stride;
      const c = batch.inputScale[i]!;
      if (c === 1) gv.set(xv.subarray(src, src + H), dst);
      else for (let j = 0; j < H; j++) gv[dst + j] = xv[src + j]! * c;
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

  /** output[tokens[i]] += outputScale[i] · (y[i] + bias2). */
  private scatter(s: Scratch, H: number, batch: ExpertBatch, output: Float32Array, bias2: Float32Array | undefined): void {
    const yv = this.pool.view(s.y);
    for (let i = 0; i < batch.tokens.length; i++) {
      const o = batch.tokens[i]! * H;
      const y = i * s.y.stride;
      const c = batch.outputScale[i]!;
      for (let j = 0; j < H; j++) output[o + j] = output[o + j]! + c * (yv[y + j]! + (bias2 ? bias2[j]! : 0));
    }
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }
}
