// The MoE forward on gpu.js, in one of its modes: `cpu` (transpiled JavaScript), `webasm`
// (WebAssembly + SIMD) or `webgpu` (WGSL through Dawn). Same contract as the float64
// reference (kernels/moe.ts): router logits, routing by kernels/routing.ts, then every
// rank's partial output from its own tensors, summed (spec §1 "Summing the ranks").
// Everything that multiplies weights runs on the device; the host only decodes tensors,
// routes and lays out the rows. Every kernel run is checked to have run on the mode asked
// for: a silent gpu.js fallback throws BackendFallbackError instead of passing as a result.
import { atLayer, type ExpertActivation, type MoeSemantics } from '../../harness/layouts/semantics.js';
import { kernelForm } from '../kernel-form.js';
import type { ForwardInputs, MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { matrixBytesF32, rankWeights, wholeFloats, type StackedMatrices } from '../fast/canonical.js';
import { checkForwardInput } from '../moe.js';
import { blockInputsF32, routedSharedPieces, scaleByExpert, sharedRows, type RoutedSharedPiece } from '../block-inputs.js';
import { openWebGpu, type AdapterDescription, type WebGpuSession } from './device.js';
import { KernelInputError } from './errors.js';
import { GpujsKernels, SILU_GATED, type ActivationConstants, type GpujsMode } from './kernels.js';
import { applyOutputNorm } from '../output-norm.js';
import { addZeroExperts, hashChoiceOf, route, sigmoid } from '../routing.js';
import { mlpRouterLogitsF32 } from '../mlp-router.js';

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

/** Stacked experts as the kernels take them: `w13` `[S, 2R, H]`, `w2` `[S, H, R]`, biases (zeros where absent). */
interface Experts {
  slots: number;
  rows: number;
  w13: Float32Array;
  w2: Float32Array;
  b13: Float32Array;
  b2: Float32Array;
}

/** A rank's weights in float32, as the kernels read them. */
interface RankF32 {
  tpRank: number;
  epRank: number;
  ids: Int32Array;
  experts: Experts;
  shared?: { experts: Experts; gate?: Float32Array };
}

/** Every matrix of `w` in one float32 array (one copy; other dtypes decoded exactly). */
function stackedFloats(w: StackedMatrices): Float32Array {
  const size = w.rows * w.cols;
  const out = new Float32Array(w.count * size);
  for (let i = 0; i < w.count; i++) {
    const b = matrixBytesF32(w, i);
    const aligned = b.byteOffset % 4 === 0 ? b : b.slice();
    out.set(new Float32Array(aligned.buffer, aligned.byteOffset, size), i * size);
  }
  return out;
}

/** One rank's tensors of layer `layer`, checked (kernels/fast/canonical.ts) and in float32. */
function rankF32(sem: MoeSemantics, layer: number, rank: RankTensors): RankF32 {
  const p = `layers.${layer}.`;
  const H = sem.hidden;
  const w = rankWeights(sem, layer, rank);
  const slots = w.ids.length;
  const r = w.w13.rows / 2;
  // Absent biases are zeros: one kernel shape serves models with and without them.
  const optional = (name: string, shape: number[]) =>
    rank.tensors.has(`${p}${name}`) ? wholeFloats(rank, `${p}${name}`, shape) : new Float32Array(shape.reduce((a, b) => a * b, 1));
  const out: RankF32 = {
    tpRank: rank.req.tpRank,
    epRank: rank.req.epRank,
    ids: w.ids,
    experts: {
      slots, rows: r, w13: stackedFloats(w.w13), w2: stackedFloats(w.w2),
      b13: optional('experts.w13_bias', [slots, 2 * r]), b2: optional('experts.w2_bias', [slots, H]),
    },
  };
  // Every EP rank holds the same shared expert; only EP rank 0's is counted.
  if (w.shared && rank.req.epRank === 0) {
    const rs = w.shared.w13.rows / 2;
    const experts: Experts = { slots: 1, rows: rs, w13: stackedFloats(w.shared.w13), w2: stackedFloats(w.shared.w2), b13: new Float32Array(2 * rs), b2: new Float32Array(H) };
    out.shared = { experts, ...(sem.sharedGate ? { gate: wholeFloats(rank, `${p}shared.gate`, [1, H]) } : {}) };
  }
  return out;
}

function activationConstants(a: ExpertActivation): ActivationConstants {
  if (a.kind === 'gpt_oss_clamped') return { act: 1, alpha: a.alpha, limit: a.limit };
  if (a.kind === 'silu_clamped') return { act: 3, alpha: 0, limit: a.limit };
  if (a.kind === 'silu_clamped_after') return { act: 4, alpha: 0, limit: a.limit };
  if (a.kind === 'gelu_tanh_gated') return { act: 5, alpha: 0, limit: 0 };
  if (a.kind === 'silu') return { act: 6, alpha: 0, limit: 0 };
  return a.kind === 'relu2' ? { act: 2, alpha: 0, limit: 0 } : SILU_GATED;
}

class GpujsMoeBackend implements GpujsBackend {
  readonly name: string;
  private disposed = false;

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

  describe(): string {
    const a = this.session?.adapter;
    return `gpu.js ${this.mode} mode, checked after every kernel${a ? `; WebGPU adapter via Dawn ${a.backend}: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}` : ''}`;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, inputs?: ForwardInputs): Promise<GpujsForwardResult> {
    sem = atLayer(sem, layer);
    const { hidden: H, experts: E, topK: k } = sem;
    if (this.disposed) throw new KernelInputError(`${this.name} was disposed`, { layer });
    checkForwardInput(sem, layer, ranks, x, tokens);
    ranks = kernelForm(sem, ranks);
    if (tokens === 0) return { output: new Float32Array(0), routerLogits: new Float32Array(0), selected: new Int32Array(0), ranOn: this.mode };
    const decoded = ranks.map((r) => rankF32(sem, layer, r));

    // The router and the selection-only bias are whole on every rank: rank 0's are used.
    const r0 = ranks[0]!;
    const p = `layers.${layer}.`;
    const correction = r0.tensors.has(`${p}router.correction_bias`) ? wholeFloats(r0, `${p}router.correction_bias`, [E - (sem.sharedRouted ?? 0)]) : undefined;
    // Router rows: the experts, or doge's 2·keys product keys.
    const rows = sem.routerRows ?? E;
    const routerBias = () => (r0.tensors.has(`${p}router.bias`) ? wholeFloats(r0, `${p}router.bias`, [rows]) : new Float32Array(rows));
    // Router and experts read their own inputs where the block normalises them (gemma4).
    const normed = blockInputsF32(sem, layer, r0, x, tokens);
    const logits = sem.mlpRouter
      ? mlpRouterLogitsF32(sem, layer, r0, normed.router, tokens, inputs)
      : await this.kernels.linear(normed.router, tokens, H, wholeFloats(r0, `${p}router.weight`, [rows, H]), rows, routerBias());
    const routing = scaleByExpert(sem, layer, r0, route(sem, logits, tokens, correction, hashChoiceOf(sem, layer, r0, tokens, inputs)));
    x = normed.experts;

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
      // The down bias belongs to the whole output: only TP rank 0 adds it.
      await this.expertsPartial(sem, rank.experts, activationConstants(sem.activation), rowInput, rowSlot, rowWeight, k, rank.tpRank === 0 ? 1 : 0, layer, accumulate);
      if (rank.shared) await this.sharedPartial(sem, rank.shared, x, tokens, layer, accumulate, routedSharedPieces(sem, routing, rank.tpRank, rank.shared.experts.rows));
    }
    addZeroExperts(sem, routing, x, tokens, output);
    applyOutputNorm(sem, layer, ranks, tokens, output);
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
    layer: number, accumulate: (part: Float32Array) => void, routed?: RoutedSharedPiece[],
  ): Promise<void> {
    const act = activationConstants(sem.sharedActivation ?? { kind: 'silu_gated' });
    if (routed) {
      // inkling: each router-weighted shared expert's rows, weighted token by token by its routing weight.
      const { rows: Rs, w13, w2 } = shared.experts;
      for (const piece of routed) {
        const n = piece.rows[1] - piece.rows[0];
        const part = sharedRows(w13, w2, sem.hidden, Rs, piece.rows);
        const experts: Experts = { slots: 1, rows: n, w13: part.w13, w2: part.w2, b13: new Float32Array(2 * n), b2: new Float32Array(sem.hidden) };
        await this.expertsPartial(sem, experts, act, x, new Int32Array(tokens), Float32Array.from(piece.weights), 1, 0, layer, accumulate);
      }
      return;
    }
    const scale = sem.sharedScale ?? 1;
    let gate = new Float32Array(tokens).fill(scale);
    if (shared.gate) {
      const z = await this.kernels.linear(x, tokens, sem.hidden, shared.gate, 1, new Float32Array(1));
      gate = z.map((v) => sigmoid(v) * scale);
    }
    await this.expertsPartial(sem, shared.experts, act, x, new Int32Array(tokens), gate, 1, 0, layer, accumulate);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
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
