// The MoE forward on gpu.js, in one of its modes: `cpu` (transpiled JavaScript), `webasm`
// (WebAssembly + SIMD) or `webgpu` (WGSL through Dawn). Same contract as the float64
// reference (kernels/moe.ts): router logits, routing by kernels/routing.ts, then every
// rank's partial output from its own tensors, summed (spec §1 "Summing the ranks").
// Everything that multiplies weights runs on the device; the host only decodes tensors,
// routes and lays out the rows. Every kernel run is checked to have run on the mode asked
// for: a silent gpu.js fallback throws BackendFallbackError instead of passing as a result.
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { decodeFloatTensor, decodeRank, type RankWeights } from '../experts.js';
import { route, sigmoid, type RoutingResult } from '../routing.js';
import { openWebGpu, type AdapterDescription, type WebGpuSession } from './device.js';
import { KernelInputError } from './errors.js';
import { GpujsKernels, SILU_GATED, type ActivationConstants, type GpujsMode } from './kernels.js';

export type { GpujsMode } from './kernels.js';

export interface GpujsBackend extends MoeBackend {
  readonly mode: GpujsMode;
  /** The WebGPU adapter in use (webgpu mode only). */
  readonly adapter?: AdapterDescription;
  forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number): Promise<GpujsForwardResult>;
  dispose(): Promise<void>;
}

export interface GpujsForwardResult extends MoeForwardResult {
  output: Float32Array;
  routerLogits: Float32Array;
  selected: Int32Array;
  /** The gpu.js mode every kernel of this forward was checked to have run on. */
  ranOn: GpujsMode;
}

/** A rank's weights in float32, as the kernels read them. */
interface RankF32 {
  tpRank: number;
  epRank: number;
  ids: Int32Array;
  rows: number;
  w13: Float32Array;
  w2: Float32Array;
  w13Bias: Float32Array;
  w2Bias: Float32Array;
  shared?: { rows: number; w13: Float32Array; w2: Float32Array; gate?: Float32Array };
}

/** float64 → float32 is exact here: every canonical dtype the forward accepts fits in f32. */
const f32 = (v: Float64Array): Float32Array => Float32Array.from(v);

function toF32(sem: MoeSemantics, r: RankWeights): RankF32 {
  const ex = r.experts;
  const slots = ex.ids.length;
  const rank: RankF32 = {
    tpRank: r.tpRank,
    epRank: r.epRank,
    ids: ex.ids,
    rows: ex.rows,
    w13: f32(ex.w13),
    w2: f32(ex.w2),
    // Absent biases are zeros: one kernel shape serves models with and without them.
    w13Bias: ex.w13Bias ? f32(ex.w13Bias) : new Float32Array(slots * 2 * ex.rows),
    w2Bias: ex.w2Bias ? f32(ex.w2Bias) : new Float32Array(slots * sem.hidden),
  };
  if (r.shared) {
    rank.shared = { rows: r.shared.rows, w13: f32(r.shared.w13), w2: f32(r.shared.w2), ...(r.shared.gate ? { gate: f32(r.shared.gate) } : {}) };
  }
  return rank;
}

function activationConstants(sem: MoeSemantics): ActivationConstants {
  const a = sem.activation;
  return a.kind === 'gpt_oss_clamped' ? { act: 1, alpha: a.alpha, limit: a.limit } : SILU_GATED;
}

/**
 * The ranks must be one whole TP × EP set: a missing rank would turn into a partial sum
 * that looks like an output.
 * TODO(kernels-reference): kernels/moe.ts has the same check as a private function; use
 * it once exported.
 */
function checkRankSet(sem: MoeSemantics, layer: number, ranks: RankTensors[]): void {
  const first = ranks[0];
  if (first === undefined) throw new KernelInputError('a forward needs at least one rank', { layer, expected: '≥ 1 rank', found: 0 });
  const { tpSize, epSize } = first.req;
  const seen = new Set<string>();
  for (const { req } of ranks) {
    const key = `${req.tpRank}/${req.epRank}`;
    const inRange = req.tpRank >= 0 && req.tpRank < tpSize && req.epRank >= 0 && req.epRank < epSize;
    if (req.tpSize !== tpSize || req.epSize !== epSize || !inRange || seen.has(key)) {
      throw new KernelInputError('ranks are not one TP × EP set', { layer, expected: `TP ${tpSize} × EP ${epSize}`, found: key });
    }
    seen.add(key);
  }
  if (seen.size !== tpSize * epSize || sem.intermediate % tpSize !== 0) {
    throw new KernelInputError('ranks missing or TP size not dividing I', { layer, expected: tpSize * epSize, found: seen.size });
  }
}

class GpujsMoeBackend implements GpujsBackend {
  readonly name: string;

  constructor(
    readonly mode: GpujsMode,
    private readonly kernels: GpujsKernels,
    private readonly session: WebGpuSession | undefined,
  ) {
    this.name = `gpujs-${mode}`;
  }

  get adapter(): AdapterDescription | undefined {
    return this.session?.adapter;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number): Promise<GpujsForwardResult> {
    const { hidden: H, experts: E } = sem;
    if (!Number.isSafeInteger(tokens) || tokens < 0 || x.length !== tokens * H) {
      throw new KernelInputError('input does not have the shape [tokens, hidden]', { layer, expected: [tokens, H], found: x.length });
    }
    checkRankSet(sem, layer, ranks);
    if (tokens === 0) return { output: new Float32Array(0), routerLogits: new Float32Array(0), selected: new Int32Array(0), ranOn: this.mode };
    const decoded = ranks.map((r) => toF32(sem, decodeRank(sem, layer, r)));

    // The router and the selection-only bias are whole on every rank: rank 0's are used.
    const r0 = ranks[0]!;
    const p = `layers.${layer}.`;
    const routerWeight = f32(decodeFloatTensor(r0, `${p}router.weight`, [E, H]));
    const routerBias = r0.tensors.has(`${p}router.bias`) ? f32(decodeFloatTensor(r0, `${p}router.bias`, [E])) : new Float32Array(E);
    const correction = r0.tensors.has(`${p}router.correction_bias`) ? decodeFloatTensor(r0, `${p}router.correction_bias`, [E]) : undefined;

    const logits = await this.kernels.linear(x, tokens, H, routerWeight, E, routerBias);
    const routing = route(sem, logits, tokens, correction);

    const output = new Float32Array(tokens * H);
    for (const rank of decoded) {
      // The all-reduce: float32 sums of the ranks' partial outputs.
      const partials = [await this.routedPartial(sem, rank, routing, x, tokens)];
      if (rank.epRank === 0 && rank.shared) partials.push(await this.sharedPartial(sem, rank.shared, x, tokens));
      for (const part of partials) {
        if (part) for (let i = 0; i < output.length; i++) output[i]! += part[i]!;
      }
    }
    return { output, routerLogits: logits, selected: routing.selected, ranOn: this.mode };
  }

  /** This rank's experts for every (token, choice) row whose expert it holds; null if none. */
  private async routedPartial(sem: MoeSemantics, rank: RankF32, routing: RoutingResult, x: Float32Array, tokens: number): Promise<Float32Array | null> {
    const { hidden: H, topK: k } = sem;
    const slots = rank.ids.length;
    const slotOf = new Map<number, number>(Array.from(rank.ids, (id, slot) => [id, slot]));
    const rowCount = tokens * k;
    const token = new Int32Array(rowCount);
    const slot = new Int32Array(rowCount);
    const scale = new Float32Array(rowCount);
    const weight = new Float32Array(rowCount);
    let local = 0;
    for (let a = 0; a < rowCount; a++) {
      const s = slotOf.get(routing.selected[a]!) ?? -1;
      const w = routing.weights[a]!;
      token[a] = Math.floor(a / k);
      slot[a] = s;
      // llama4_text scales the expert's input; every other routing scales its output.
      scale[a] = routing.inputScale ? w : 1;
      weight[a] = routing.inputScale ? 1 : w;
      if (s >= 0) local++;
    }
    if (local === 0) return null;
    const act = await this.kernels.gatedUp(x, tokens, H, { token, slot, scale }, rank.w13, slots, rank.rows, rank.w13Bias, activationConstants(sem));
    const y = await this.kernels.down(act, slot, rank.w2, slots, H, rank.rows);
    // The down bias belongs to the whole output: only TP rank 0 adds it.
    return this.kernels.combine(y, weight, slot, k, H, rank.w2Bias, slots, rank.tpRank === 0 ? 1 : 0);
  }

  /** The shared expert over every token, × σ(x·gate) where the model has that gate. */
  private async sharedPartial(sem: MoeSemantics, shared: NonNullable<RankF32['shared']>, x: Float32Array, tokens: number): Promise<Float32Array> {
    const H = sem.hidden;
    const token = Int32Array.from({ length: tokens }, (_, t) => t);
    const slot = new Int32Array(tokens);
    const ones = new Float32Array(tokens).fill(1);
    const act = await this.kernels.gatedUp(x, tokens, H, { token, slot, scale: ones }, shared.w13, 1, shared.rows, new Float32Array(2 * shared.rows), SILU_GATED);
    const y = await this.kernels.down(act, slot, shared.w2, 1, H, shared.rows);
    let gate = ones;
    if (shared.gate) {
      const z = await this.kernels.linear(x, tokens, H, shared.gate, 1, new Float32Array(1));
      gate = z.map(sigmoid);
    }
    return this.kernels.combine(y, gate, slot, 1, H, new Float32Array(H), 1, 0);
  }

  async dispose(): Promise<void> {
    await this.kernels.destroy();
    await this.session?.dispose();
  }
}

/**
 * A gpu.js MoE backend (`gpujs-cpu`, `gpujs-webasm`, `gpujs-webgpu`). The webgpu mode opens
 * a Dawn adapter first and throws WebGpuUnavailableError when there is none; call
 * `dispose()` when done so that Node can exit.
 */
export async function createGpujsBackend(mode: GpujsMode): Promise<GpujsBackend> {
  const session = mode === 'webgpu' ? await openWebGpu() : undefined;
  try {
    return new GpujsMoeBackend(mode, new GpujsKernels(mode), session);
  } catch (error) {
    await session?.dispose();
    throw error;
  }
}
