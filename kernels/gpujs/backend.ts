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
import { route, sigmoid } from '../routing.js';
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

/** Stacked experts as the kernels take them: `w13` `[S, 2R, H]`, `w2` `[S, H, R]`, biases (zeros where absent). */
interface Experts {
  slots: number;
  rows: number;
  w13: Float32Array;
  w2: Float32Array;
  b13: Float32Array;
  b2: Float32Array;
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
    /** The most bytes of expert weights handed to one kernel call. */
    private readonly maxBufferBytes: number,
  ) {
    this.name = `gpujs-${mode}`;
  }

  get adapter(): AdapterDescription | undefined {
    return this.session?.adapter;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number): Promise<GpujsForwardResult> {
    const { hidden: H, experts: E, topK: k } = sem;
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

    // Row a = t*k + c: token t's c-th choice. llama4_text scales the expert's input by the
    // routing weight (rounded to f32 like the product on a device); the others its output.
    const rowInput = new Float32Array(tokens * k * H);
    const rowWeight = new Float32Array(tokens * k);
    for (let a = 0; a < tokens * k; a++) {
      const t = Math.floor(a / k);
      const w = routing.weights[a]!;
      const s = routing.inputScale ? w : 1;
      for (let h = 0; h < H; h++) rowInput[a * H + h] = x[t * H + h]! * s;
      rowWeight[a] = routing.inputScale ? 1 : w;
    }

    const output = new Float32Array(tokens * H);
    // The all-reduce: float32 sums of every rank's (and weight chunk's) partial output.
    const accumulate = (part: Float32Array) => {
      for (let i = 0; i < output.length; i++) output[i]! += part[i]!;
    };
    for (const rank of decoded) {
      const slotOf = new Map<number, number>(Array.from(rank.ids, (id, slot) => [id, slot]));
      const rowSlot = Int32Array.from(routing.selected, (id) => slotOf.get(id) ?? -1);
      const experts: Experts = { slots: rank.ids.length, rows: rank.rows, w13: rank.w13, w2: rank.w2, b13: rank.w13Bias, b2: rank.w2Bias };
      // The down bias belongs to the whole output: only TP rank 0 adds it.
      await this.expertsPartial(sem, experts, activationConstants(sem), rowInput, rowSlot, rowWeight, k, rank.tpRank === 0 ? 1 : 0, layer, accumulate);
      if (rank.epRank === 0 && rank.shared) await this.sharedPartial(sem, rank.shared, x, tokens, layer, accumulate);
    }
    return { output, routerLogits: logits, selected: routing.selected, ranOn: this.mode };
  }

  /**
   * Σ over the rows a = t*k + c whose slot is held here of weight[a]·expert_slot(input[a]),
   * into `accumulate` one `[T, H]` partial at a time. Experts go to the device in chunks
   * small enough for one storage buffer (llvmpipe allows 128 MiB: less than 8 experts of
   * H=1024, I=2816).
   */
  private async expertsPartial(
    sem: MoeSemantics, experts: Experts, act: ActivationConstants,
    rowInput: Float32Array, rowSlot: Int32Array, rowWeight: Float32Array, k: number, biasOn: 0 | 1,
    layer: number, accumulate: (part: Float32Array) => void,
  ): Promise<void> {
    const H = sem.hidden;
    const { slots, rows: r } = experts;
    const slotBytes = 4 * 2 * r * H;
    if (slotBytes > this.maxBufferBytes) {
      throw new KernelInputError("one expert's w13 does not fit in one device buffer", { layer, expected: `≤ ${this.maxBufferBytes} bytes`, found: slotBytes });
    }
    const perChunk = Math.max(1, Math.floor(this.maxBufferBytes / slotBytes));
    for (let first = 0; first < slots; first += perChunk) {
      const end = Math.min(slots, first + perChunk);
      const chunkSlot = rowSlot.map((s) => (s >= first && s < end ? s - first : -1));
      if (chunkSlot.every((s) => s < 0)) continue;
      const n = end - first;
      const h = await this.kernels.gatedUp(rowInput, H, chunkSlot, experts.w13.subarray(first * 2 * r * H, end * 2 * r * H), n, r, experts.b13.subarray(first * 2 * r, end * 2 * r), act);
      const y = await this.kernels.down(h, chunkSlot, experts.w2.subarray(first * H * r, end * H * r), n, H, r);
      accumulate(await this.kernels.combine(y, rowWeight, chunkSlot, k, H, experts.b2.subarray(first * H, end * H), n, biasOn));
    }
  }

  /** The shared expert over every token (one row each), × σ(x·gate) where the model has that gate. */
  private async sharedPartial(
    sem: MoeSemantics, shared: NonNullable<RankF32['shared']>, x: Float32Array, tokens: number,
    layer: number, accumulate: (part: Float32Array) => void,
  ): Promise<void> {
    const H = sem.hidden;
    let gate = new Float32Array(tokens).fill(1);
    if (shared.gate) {
      const z = await this.kernels.linear(x, tokens, H, shared.gate, 1, new Float32Array(1));
      gate = z.map(sigmoid);
    }
    const experts: Experts = { slots: 1, rows: shared.rows, w13: shared.w13, w2: shared.w2, b13: new Float32Array(2 * shared.rows), b2: new Float32Array(H) };
    await this.expertsPartial(sem, experts, SILU_GATED, x, new Int32Array(tokens), gate, 1, 0, layer, accumulate);
  }

  async dispose(): Promise<void> {
    await this.kernels.destroy();
    await this.session?.dispose();
  }
}

export interface GpujsBackendOptions {
  /**
   * The most bytes of expert weights passed to one kernel call; experts are sent in chunks
   * under it. Default 1 GiB (webasm keeps every argument in one 32-bit wasm memory), and
   * never more than the WebGPU device's storage-buffer limit.
   */
  maxBufferBytes?: number;
}

const DEFAULT_MAX_BUFFER_BYTES = 2 ** 30;

/**
 * A gpu.js MoE backend (`gpujs-cpu`, `gpujs-webasm`, `gpujs-webgpu`). The webgpu mode opens
 * a Dawn adapter first and throws WebGpuUnavailableError when there is none; call
 * `dispose()` when done so that Node can exit.
 */
export async function createGpujsBackend(mode: GpujsMode, options: GpujsBackendOptions = {}): Promise<GpujsBackend> {
  const session = mode === 'webgpu' ? await openWebGpu() : undefined;
  try {
    const limit = Math.min(options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES, session?.adapter.maxStorageBufferBytes ?? Infinity);
    return new GpujsMoeBackend(mode, new GpujsKernels(mode), session, limit);
  } catch (error) {
    await session?.dispose();
    throw error;
  }
}
