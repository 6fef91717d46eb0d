/// <reference types="@webgpu/types" />
// The MoE forward as hand-written WGSL (`wgsl-webgpu`) on the WebGPU device that
// kernels/gpujs/device.ts acquires through Dawn (one device per process, shared with
// gpu.js). The whole forward is one command buffer with no host round trip inside: the
// router as a one-expert GEMM (its bias fused), routing on the GPU (routing.ts; sparsemixer
// alone routes on the CPU), then per rank: tokens grouped by expert on the GPU (grouping.ts),
// one grouped GEMM dispatch for gate/up with the activation fused (all experts of a weight
// chunk at once, dispatched indirectly with the tile counts the GPU wrote), one for down with
// the bias and the routing weight fused, the shared expert likewise, and one combine that sums
// each token's expert rows. Weights are read as stored (f32, bf16, f16; other dtypes decoded
// to f32 on the CPU). A rank's stacked weights are cut into chunks of whole experts that fit
// the device's largest storage binding, one dispatch per chunk. Tilings are chosen per shape,
// one for the up GEMMs and one for the down GEMMs (a small autotune when asked, cached;
// otherwise by rows per expert). Two entries: `forward`
// (host arrays in and out, the MoeBackend contract) and `forwardOnDevice` (x and the output
// stay in GPU buffers). Same rank-summing semantics as the CPU fast path (kernels/fast/).
import { createRequire } from 'node:module';
import { atLayer, SILU_GATED, type ExpertActivation, type MoeSemantics } from '../../harness/layouts/semantics.js';
import type { ForwardInputs, MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { MoeConformanceError } from '../../harness/errors.js';
import { LITTLE_ENDIAN_HOST } from '../../harness/safetensors/codecs.js';
import { openWebGpu, withTimeout, type AdapterDescription, type WebGpuOptions, type WebGpuSession } from '../gpujs/device.js';
import { expertBiases, matrixBytesF32, rankWeights, sharedPieceMatrices, wholeFloats, type RankWeights, type StackedMatrices } from '../fast/canonical.js';
import { tensorOf } from '../experts.js';
import { checkForwardInput, ForwardInputError } from '../moe.js';
import { kernelForm } from '../kernel-form.js';
import { applyOutputNorm } from '../output-norm.js';
import { hashChoiceOf, route, type HashChoice, type RoutingResult } from '../routing.js';
import { mlpRouterLogitsF32 } from '../mlp-router.js';
import { blockInputsF32, routedSharedPieces, scaleByExpert } from '../block-inputs.js';
import {
  CANDIDATE_TILINGS, checkTiling, COMBINE_SHADER, DEFAULT_SKINNY, gemmParams, kChunkOf, SKINNY_ROWS, gemmShader, tileCols, tileRows, vecLoads, workgroupBytes, workgroupSize,
  type GemmMode, type GemmParams, type GemmTiling, type WeightDtype,
} from './shaders.js';
import { routingProgram, routingShader, type RoutingProgram } from './routing.js';
import { ForwardPool } from './pool.js';
import { ALL_ROWS_SHADER, COUNT_SHADER, PLAN_SHADER, planParams, SCATTER_SHADER, ZERO_EXPERTS_SHADER } from './grouping.js';

/** The device rejected a buffer, pipeline or dispatch, or a readback did not come back. */
export class WgslKernelError extends MoeConformanceError {}

// GPUBufferUsage / GPUMapMode values (WebGPU spec), as Node has no such globals.
const MAP_READ = 0x0001;
const MAP_WRITE = 0x0002;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;
const INDIRECT = 0x0100;
const READBACK_TIMEOUT_MS = 120_000;
/** Forwards the autotune times per candidate tiling (the first dropped). */
const TUNE_RUNS = 4;
/** Router GEMMs of up to this many tokens take the few-rows kernel (`routerTiling`). */
const ROUTER_SKINNY_TOKENS = 256;
/** Largest single queue.writeBuffer. */
const UPLOAD_PIECE = 64 << 20;

/** A forward's tilings: the up (gate/up) GEMMs take `up`, the down GEMMs `down` (whose split-K the combine sums). */
export interface ForwardTiling {
  up: GemmTiling;
  down: GemmTiling;
}

export interface WgslOptions extends WebGpuOptions {
  /** One tiling for every GEMM, router included, or one for the up and one for the down GEMMs (the router's then down's); no autotune. */
  tiling?: GemmTiling | ForwardTiling;
  /** Time the candidate tilings on the first forward of each shape and keep the fastest. */
  autotune?: boolean;
  /** Keep the last forward's weights on the device across forwards (same contract as the CPU path's). */
  residentWeights?: boolean;
  /** Largest weight chunk in bytes (default: the device's largest storage binding); for tests of chunking. */
  chunkBytes?: number;
}

/** A forward's results in device buffers, owned by the backend: valid until its next forward. */
export interface DeviceForward {
  /** `[tokens, hidden]` f32. */
  output: GPUBuffer;
  /** `[tokens, experts]` f32 router logits, router bias included. */
  logits: GPUBuffer;
  /** `[tokens, topK]` i32 selected expert ids, best first. */
  selected: GPUBuffer;
  tokens: number;
}

/** One run of whole experts of a stacked tensor in one device buffer. */
interface WeightChunk {
  first: number;
  count: number;
  buffer: GPUBuffer;
}

interface DeviceMatrices {
  dtype: WeightDtype;
  chunks: WeightChunk[];
}

/** One rank's device weights and tables, independent of the routing and the tiling. */
interface RankPlan {
  weights: RankWeights;
  /** Local experts. */
  n: number;
  /** Combine slots per token: k, and the shared expert's where this rank computes it. */
  slots: number;
  /** `[E]` i32: the local slot of each global expert id, -1 where not local. */
  slotOf: GPUBuffer;
  w13: DeviceMatrices;
  w2: DeviceMatrices;
  b13?: GPUBuffer;
  b2?: GPUBuffer;
  /** The shared expert; its row table made on the GPU (ALL_ROWS), or given where the routing weights it. */
  shared?: { w13: DeviceMatrices; w2: DeviceMatrices; R: number; rowsParams: GPUBuffer; gate?: GPUBuffer; rows?: GPUBuffer; more?: SharedPiecePlan[] };
}

/**
 * inkling: a further run of a rank's shared rows that another router-weighted shared expert
 * owns, computed after the rank's combine into the shared expert's rows of `y` and added to
 * the output by a combine of its own (`pos` row t: the shared row of token t).
 */
interface SharedPiecePlan {
  w13: DeviceMatrices;
  w2: DeviceMatrices;
  R: number;
  rows: GPUBuffer;
  pos: GPUBuffer;
}

/** One rank's scratch at one tiling (see grouping.ts). */
interface RankScratch {
  counts: GPUBuffer;
  offsets: GPUBuffer;
  tilesA: GPUBuffer;
  tilesB: GPUBuffer;
  args: GPUBuffer;
  rows: GPUBuffer;
  pos: GPUBuffer;
  act: GPUBuffer;
  y: GPUBuffer;
  capA: number;
  capB: number;
  plan: Uint32Array;
}

interface TuneEntry {
  tiling: ForwardTiling;
  /** ms by `tilingKey`. */
  timings: Record<string, number>;
}

/** A tiling without split-K: what the up GEMMs and the router run at (their epilogues need whole sums), and the pipelines' key (the shader is the same). */
function unsplit(t: GemmTiling): GemmTiling {
  if (t.splitK === undefined) return t;
  const { splitK: _split, ...whole } = t;
  return whole;
}

/** A tiling as one ForwardTiling: one tiling for every GEMM, its split-K (if any) the down GEMMs'. */
const forwardTiling = (t: GemmTiling | ForwardTiling): ForwardTiling => ('up' in t ? t : { up: unsplit(t), down: t });

/** How a forward tiling is named in the autotune's timings: the one tiling's JSON where both GEMMs take it, else the pair's. */
export const tilingKey = (f: ForwardTiling): string => (JSON.stringify(f.up) === JSON.stringify(f.down) ? JSON.stringify(f.up) : JSON.stringify(f));

const require = createRequire(import.meta.url);

function dtypeOf(w: StackedMatrices): WeightDtype | undefined {
  if (!LITTLE_ENDIAN_HOST) return undefined;
  return ({ F32: 'f32', BF16: 'bf16', F16: 'f16' } as Record<string, WeightDtype>)[w.tensor.dtype];
}

export class WgslWebGpuBackend implements MoeBackend {
  readonly name = 'wgsl-webgpu';
  private readonly resident = new Map<object, DeviceMatrices>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly scratch = new Map<string, GPUBuffer>();
  private readonly tuned = new Map<string, TuneEntry>();
  /** The small per-forward buffers and the bind groups, kept for the next forward of the shape. */
  private readonly pool: ForwardPool;
  /** Resident biases, by the rank's w13 tensor. */
  private readonly residentBiases = new Map<object, { b13?: GPUBuffer; b2?: GPUBuffer }>();
  /**
   * Kept mappable buffers: the upload staging (mapped again right after each submit, so the
   * next forward writes into it at once) and the readbacks. Fresh mappable buffers per
   * forward cost a page fault per 4 KiB on the host, which made transfers run at about 1 GB/s.
   */
  private upload?: { buffer: GPUBuffer; ready: Promise<unknown> };
  private readback?: GPUBuffer;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(
    private readonly session: WebGpuSession,
    private readonly device: GPUDevice,
    private readonly options: WgslOptions,
  ) {
    this.pool = new ForwardPool(device);
  }

  get adapter(): AdapterDescription {
    return this.session.adapter;
  }

  /** The tilings chosen so far, by shape key, with what each candidate took (ms). */
  get tunings(): ReadonlyMap<string, TuneEntry> {
    return this.tuned;
  }

  describe(): string {
    const a = this.session.adapter;
    return `hand-written WGSL (grouped GEMMs), WebGPU adapter via Dawn ${a.backend}: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`;
  }

  /** Opens (or joins) the process's WebGPU session and compiles the fixed kernels (GEMM and routing variants compile on first use). */
  static async create(options: WgslOptions = {}): Promise<WgslWebGpuBackend> {
    const session = await openWebGpu(options);
    try {
      const { device } = (await (require('gpu.js') as { WebGPUContext: { acquire(): Promise<{ device: GPUDevice }> } }).WebGPUContext.acquire());
      const given = options.tiling && forwardTiling(options.tiling);
      if (given && (given.up.splitK ?? 1) > 1) throw new WgslKernelError(`tiling ${JSON.stringify(given.up)}: the up GEMMs never split K (the activation needs whole sums); splitK belongs to down`, { expected: 'no splitK on up', found: given.up.splitK });
      for (const t of given ? [given.up, given.down] : []) {
        checkTiling(t);
        if (!WgslWebGpuBackend.fits(device, t)) {
          throw new WgslKernelError(`tiling ${JSON.stringify(t)} exceeds this device's workgroup limits`, { expected: `≤ ${device.limits.maxComputeInvocationsPerWorkgroup} invocations, ≤ ${device.limits.maxComputeWorkgroupStorageSize} bytes`, found: JSON.stringify(t) });
        }
      }
      const backend = new WgslWebGpuBackend(session, device, options);
      // The device is the process's (shared with gpu.js): the scope is popped whatever the compiles throw.
      device.pushErrorScope('validation');
      let thrown: unknown;
      try {
        for (const [mode, t] of given ? [['up', given.up], ['down', given.down]] as const : [['down', backend.candidates()[0]!]] as const) backend.pipeline(mode, t, 'f32', true);
        for (const [name, code] of FIXED_SHADERS) backend.compile(name, code);
      } catch (e) {
        thrown = e;
      }
      const error = await device.popErrorScope();
      if (thrown) throw thrown;
      if (error) throw new WgslKernelError(`WGSL kernels rejected by the device: ${error.message}`, { expected: 'valid pipelines', found: error.message });
      return backend;
    } catch (e) {
      await session.dispose();
      throw e;
    }
  }

  private static fits(device: GPUDevice, t: GemmTiling): boolean {
    const [x, y] = workgroupSize(t);
    return x * y <= device.limits.maxComputeInvocationsPerWorkgroup && x <= device.limits.maxComputeWorkgroupSizeX
      && y <= device.limits.maxComputeWorkgroupSizeY && workgroupBytes(t) <= device.limits.maxComputeWorkgroupStorageSize;
  }

  /** The candidate tilings this device can run, largest tile first. */
  private candidates(): GemmTiling[] {
    const fit = CANDIDATE_TILINGS.filter((t) => WgslWebGpuBackend.fits(this.device, t));
    if (fit.length === 0) throw new WgslKernelError('no GEMM tiling fits this device', { expected: 'a candidate within the workgroup limits', found: JSON.stringify(this.device.limits.maxComputeInvocationsPerWorkgroup) });
    return fit;
  }

  /**
   * Without autotune: the few-rows kernel up to SKINNY_ROWS rows per expert (DEFAULT_SKINNY,
   * else the first skinny candidate within this device's limits), else the largest tiled tile
   * whose rows the average expert fills.
   */
  private heuristic(rowsPerExpert: number): GemmTiling {
    const fit = this.candidates();
    const skinny = WgslWebGpuBackend.fits(this.device, DEFAULT_SKINNY) ? DEFAULT_SKINNY : fit.find((t) => t.kind === 'skinny');
    if (rowsPerExpert <= SKINNY_ROWS && skinny) return skinny;
    const tiled = fit.filter((t) => t.kind !== 'skinny');
    return tiled.find((t) => tileRows(t) <= Math.max(16, rowsPerExpert)) ?? tiled[tiled.length - 1] ?? fit[0]!;
  }

  /**
   * The router GEMM's tiling: it has few columns (E) against a long K (H), so a tiled GEMM
   * puts a few workgroups on the whole device (one at DeepSeek-V3's E 256 and 16 tokens).
   * Up to ROUTER_SKINNY_TOKENS rows, the few-rows kernel with the deepest tiles (router
   * weights re-read once per tm rows); past that, thin tiles.
   */
  private routerTiling(tokens: number): GemmTiling {
    const fit = this.candidates();
    const skinny = fit.filter((t) => t.kind === 'skinny').sort((a, b) => tileRows(b) - tileRows(a))[0];
    return tokens <= ROUTER_SKINNY_TOKENS && skinny ? skinny : this.heuristic(16);
  }

  /** The pipeline of `code`, compiled once per key (a GEMM variant, or a fixed shader's name). */
  private compile(key: string, code: string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code }), entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }


  private routingPipeline(program: RoutingProgram, E: number, k: number): GPUComputePipeline {
    const key = JSON.stringify(['routing', program, E, k]);
    return this.pipelines.get(key) ?? this.compile(key, routingShader(program, E, k));
  }

  private pipeline(mode: GemmMode, tiling: GemmTiling, dtype: WeightDtype, vec: boolean): GPUComputePipeline {
    const whole = unsplit(tiling);
    const key = JSON.stringify([mode, whole, dtype, vec]);
    return this.pipelines.get(key) ?? this.compile(key, gemmShader({ mode, tiling: whole, dtype, vec }));
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, inputs?: ForwardInputs): Promise<MoeForwardResult> {
    const prepared = this.prepare(sem, layer, ranks, x, tokens);
    sem = prepared.sem;
    // A hash layer's fixed choice (deepseek_v4) and an MLP router's logits (zaya): from the shared CPU code, routed on the CPU.
    const host: HostRouterInputs = { hash: hashChoiceOf(sem, layer, ranks[0]!, tokens, inputs) };
    if (tokens === 0) return { output: new Float32Array(0), routerLogits: new Float32Array(0), selected: new Int32Array(0) };
    if (sem.mlpRouter) host.logits = mlpRouterLogitsF32(sem, layer, ranks[0]!, x, tokens, inputs);
    return this.serialized(async () => {
      // gemma4's normalised router and expert inputs: made on the host, as every backend does.
      const inputs = blockInputsF32(sem, layer, prepared.ranks[0]!, x, tokens);
      const bytesOf = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const xBuf = this.scratchBuffer('x', tokens * sem.hidden * 4);
      await this.uploadStaged(xBuf, bytesOf(inputs.experts));
      const xRouter = inputs.router === inputs.experts ? xBuf : this.temporary()(inputs.router);
      const { encoder, result } = await this.encodeForward(sem, layer, prepared.ranks, prepared.weights, xBuf, xRouter, tokens, host);
      const [output, logits, selected] = await this.readBack(encoder, [[result.output, tokens * sem.hidden], [result.logits, tokens * routerRows(sem)], [result.selected, tokens * sem.topK]]);
      const out = new Float32Array(output!);
      // axk1's block-output RMSNorm: on the host, of the sum of the ranks, as every backend does.
      applyOutputNorm(sem, layer, prepared.ranks, tokens, out);
      return { output: out, routerLogits: new Float32Array(logits!), selected: new Int32Array(selected!) };
    });
  }

  /**
   * The forward on device-resident data, as a model would run it between layers: x already in
   * a GPU buffer (`[tokens, hidden]` f32, e.g. from `inputBuffer`), nothing copied to or from the
   * host (except where routing runs on the CPU: sparsemixer, and the routings that read more
   * of the block's tensors, see `hostRouting`), resolved once the GPU has finished. The
   * result's buffers belong to the backend and hold until its next forward. Models whose
   * block normalises its input or output (gemma4, axk1) are refused: those norms run on the host.
   * `repeat` > 1 encodes the same forward that many times, one after the other, into one
   * submission (as a model submits its layers): the GPU's time per forward without the host's
   * encoding and waiting between forwards, which the GPU benchmark reports beside one forward.
   */
  async forwardOnDevice(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: GPUBuffer, tokens: number, repeat = 1): Promise<DeviceForward> {
    const prepared = this.prepare(sem, layer, ranks, undefined, tokens);
    sem = prepared.sem;
    if (sem.mlpRouter || sem.hash?.layers.includes(layer)) {
      throw new WgslKernelError('an MLP router (zaya) or hash-routed layers (deepseek_v4) take inputs beside x: use forward()', { layer, expected: 'no mlpRouter or hash layers', found: sem.mlpRouter ? 'mlpRouter' : 'hash' });
    }
    if (sem.outputNorm || sem.inputNorms) {
      throw new WgslKernelError('the block\'s input or output norm (gemma4, axk1) runs on the host: use forward()', { layer, expected: 'no inputNorms or outputNorm', found: JSON.stringify({ inputNorms: sem.inputNorms, outputNorm: sem.outputNorm }) });
    }
    if (x.size < tokens * sem.hidden * 4) throw new ForwardInputError('input buffer smaller than [tokens, hidden] f32', { layer, expected: tokens * sem.hidden * 4, found: x.size });
    if (!Number.isSafeInteger(repeat) || repeat < 1) throw new ForwardInputError('repeat must be a positive integer', { layer, expected: '≥ 1', found: repeat });
    if (tokens === 0) return { output: this.scratchBuffer('out', 0), logits: this.scratchBuffer('logits', 0), selected: this.scratchBuffer('selected', 0), tokens };
    return this.serialized(async () => {
      const commands: GPUCommandBuffer[] = [];
      let last: Omit<DeviceForward, 'tokens'> | undefined;
      for (let i = 0; i < repeat; i++) {
        const { encoder, result } = await this.encodeForward(sem, layer, prepared.ranks, prepared.weights, x, x, tokens);
        commands.push(encoder.finish());
        last = result;
      }
      const result = last!;
      this.device.queue.submit(commands);
      await withTimeout(this.device.queue.onSubmittedWorkDone(), READBACK_TIMEOUT_MS, this.session.adapter.backend);
      return { ...result, tokens };
    });
  }

  /**
   * The routing shader alone on `[tokens, experts]` logits (router bias included) and the
   * correction bias where the model has one: what every forward routes with, for checking
   * against kernels/routing.ts. Refused for the kinds routed on the CPU.
   */
  async routeOnDevice(sem: MoeSemantics, logits: Float32Array, tokens: number, correction?: Float32Array): Promise<{ selected: Int32Array; weights: Float32Array }> {
    const program = routingProgram(sem.routing);
    if (!program) throw new WgslKernelError(`${sem.routing.kind} routing runs on the CPU`, { expected: 'a routing kind the GPU runs', found: sem.routing.kind });
    const { experts: E, topK: k } = sem;
    if (logits.length !== tokens * E) throw new ForwardInputError('router logits do not have the shape [tokens, experts]', { expected: [tokens, E], found: logits.length });
    return this.serialized(async () => {
      const make = this.temporary();
      const selected = make(tokens * k * 4);
      const weights = make(tokens * k * 4);
      const encoder = this.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      this.dispatch(pass, this.routingPipeline(program, E, k), [make(routingParams(tokens), UNIFORM), make(logits), make(correction ?? new Float32Array(E)), selected, weights], Math.ceil(tokens / 64));
      pass.end();
      const [ids, w] = await this.readBack(encoder, [[selected, tokens * k], [weights, tokens * k]]);
      return { selected: new Int32Array(ids!), weights: new Float32Array(w!) };
    });
  }

  /** A new device buffer holding `x` (the caller destroys it), for `forwardOnDevice`. */
  inputBuffer(x: Float32Array): GPUBuffer {
    const b = this.createBuffer(x.byteLength, STORAGE);
    this.writeAt(b, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    return b;
  }

  /** The output of a device forward, read back to the host. */
  async readOutput(sem: MoeSemantics, d: DeviceForward): Promise<Float32Array> {
    const [out] = await this.readBack(this.device.createCommandEncoder(), [[d.output, d.tokens * sem.hidden]]);
    return new Float32Array(out!);
  }

  private prepare(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array | undefined, tokens: number): { sem: MoeSemantics; ranks: RankTensors[]; weights: RankWeights[] } {
    if (this.disposed) throw new WgslKernelError('wgsl-webgpu backend used after dispose');
    sem = atLayer(sem, layer);
    // A device input is sized by forwardOnDevice; only its length is checked here.
    checkForwardInput(sem, layer, ranks, x ?? { length: tokens * sem.hidden }, tokens);
    const kernelRanks = kernelForm(sem, ranks);
    return { sem, ranks: kernelRanks, weights: kernelRanks.map((rank) => rankWeights(sem, layer, rank)) };
  }

  /** Runs `body` after every earlier forward (they share scratch buffers), inside the device's error scopes; the per-forward pool settles after it. */
  private serialized<T>(body: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => this.guarded(body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async guarded<T>(body: () => Promise<T>): Promise<T> {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    try {
      return await body();
    } finally {
      const oom = await this.device.popErrorScope();
      const invalid = await this.device.popErrorScope();
      this.pool.settle();
      const error = oom ?? invalid;
      // Thrown from finally on purpose: a forward the device rejected has no valid output.
      // eslint-disable-next-line no-unsafe-finally
      if (error) throw new WgslKernelError(`device rejected the forward: ${error.message}`, { expected: 'no device error', found: error.message });
    }
  }

  /**
   * Encodes the whole forward (router GEMM, routing, grouping, expert GEMMs, combine) on one
   * command encoder, not yet submitted; where routing runs on the CPU (`hostRouting`) the
   * router's logits make one round trip first. On the first forward of a shape with `autotune`, every candidate tiling is
   * timed on it first.
   */
  private async encodeForward(
    sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], xBuf: GPUBuffer, xRouter: GPUBuffer, tokens: number,
    host: HostRouterInputs = {},
  ): Promise<{ encoder: GPUCommandEncoder; result: Omit<DeviceForward, 'tokens'> }> {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const buffer = this.temporary();
    if (this.options.residentWeights) this.hold(weights);
    const zeros = buffer(Math.max(16, 4 * Math.max(E, H)));
    const r0 = ranks[0]!;
    // Router rows: the experts, or doge's 2·keys product keys; an MLP router's logits come from the host.
    const R = routerRows(sem);
    const router: StackedMatrices | undefined = host.logits ? undefined : { tensor: tensorOf(r0, `${p}router.weight`, [R, H]), name: `${p}router.weight`, count: 1, rows: R, cols: H };
    const routerW = router && (this.options.residentWeights ? this.residentMatrices(router) : this.matrices(router));
    const routerBias = r0.tensors.has(`${p}router.bias`) ? buffer(wholeFloats(r0, `${p}router.bias`, [R])) : undefined;
    const correctionValues = r0.tensors.has(`${p}router.correction_bias`) ? wholeFloats(r0, `${p}router.correction_bias`, [E - (sem.sharedRouted ?? 0)]) : undefined;
    const logits = this.scratchBuffer('logits', tokens * R * 4);
    const selected = this.scratchBuffer('selected', tokens * k * 4);
    const routeWeights = this.scratchBuffer('weights', tokens * k * 4);
    const allRows = this.scratchBuffer('allRows', tokens * 16);
    const out = this.scratchBuffer('out', tokens * H * 4);
    // Hash layers (score_bias_topk) have no shader: hostRouting covers them.
    const program = hostRouting(sem) ? undefined : routingProgram(sem.routing);
    const correction = correctionValues ? buffer(correctionValues) : zeros;
    const routerTiling = this.options.tiling ? unsplit(forwardTiling(this.options.tiling).down) : this.routerTiling(tokens);
    const encodeRouter = (pass: GPUComputePassEncoder) => {
      this.dispatch(pass, this.compile('rows', ALL_ROWS_SHADER), [buffer(rowsParams(tokens, H, false, 1), UNIFORM), xRouter, zeros, allRows], Math.ceil(tokens / 64));
      this.grouped(pass, 'down', routerTiling, routerW!, [0, tokens], { N: R, K: H, rowsB: R, upRow: 0, ldc: R, cOff: 0, hasBias: routerBias !== undefined, mode: 0, alpha: 0, limit: 0 }, allRows, xRouter, routerBias ?? zeros, logits, buffer);
      if (program) this.dispatch(pass, this.routingPipeline(program, E, k), [buffer(routingParams(tokens), UNIFORM), logits, correction, selected, routeWeights], Math.ceil(tokens / 64));
    };
    let hostRouted: RoutingResult | undefined;
    if (!program) {
      // The router's logits come back (or come from the host: an MLP router's) and the shared CPU code routes.
      let l: Float32Array;
      if (host.logits) {
        l = host.logits;
        this.writeAt(logits, new Uint8Array(l.buffer, l.byteOffset, l.byteLength));
      } else {
        const encoder = this.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        encodeRouter(pass);
        pass.end();
        l = new Float32Array((await this.readBack(encoder, [[logits, tokens * R]]))[0]!);
      }
      const routing = scaleByExpert(sem, layer, r0, route(sem, l, tokens, correctionValues, host.hash));
      hostRouted = routing;
      this.writeAt(selected, new Uint8Array(routing.selected.buffer));
      this.writeAt(routeWeights, new Uint8Array(Float32Array.from(routing.weights).buffer));
    }

    const plans = ranks.map((rank, r) => this.plan(sem, layer, rank, weights[r]!, tokens, hostRouted, buffer));
    const encode = (tiling: ForwardTiling): GPUCommandEncoder => {
      const encoder = this.device.createCommandEncoder();
      // Sized for every rank before any is encoded: growing a scratch buffer replaces it, which would drop it from under an earlier rank's commands.
      plans.forEach((plan, r) => this.rankScratch(sem, plan, tiling, tokens, r));
      const scratch = plans.map((plan, r) => this.rankScratch(sem, plan, tiling, tokens, r));
      for (const s of scratch) encoder.clearBuffer(s.counts);
      const pass = encoder.beginComputePass();
      if (program) encodeRouter(pass);
      plans.forEach((plan, r) => this.encodeRank(pass, sem, plan, scratch[r]!, tiling, xBuf, selected, routeWeights, tokens, r, zeros, buffer));
      const Z = sem.zeroExperts ?? 0;
      // Skip classes (zaya) add nothing; zero-compute experts add weight · x.
      if (Z > 0 && !sem.zeroExpertsSkip) {
        this.dispatch(pass, this.compile('zero', ZERO_EXPERTS_SHADER), [buffer(new Uint32Array([tokens, H, k, E - Z]), UNIFORM), selected, routeWeights, xBuf, out], Math.ceil((tokens * H) / 128));
      }
      pass.end();
      return encoder;
    };
    const key = [H, sem.intermediate, sem.sharedIntermediate, E, k, ranks.length, `tp${r0.req.tpSize}ep${r0.req.epSize}`, weights[0]!.w13.tensor.dtype, Math.round(Math.log2(Math.max(1, (tokens * k) / E)))].join('/');
    // A tiling this forward cannot run at (row tiles past one dispatch, split-K parts past one binding) is never tried or kept; a given one is refused by the device or rankScratch.
    const usable = (t: ForwardTiling) => this.fitsDevice(plans, t, sem, tokens);
    const given = this.options.tiling && forwardTiling(this.options.tiling);
    const chosen = given ?? (this.options.autotune ? await this.tune(key, encode, usable) : forwardTiling(this.heuristic((tokens * k) / E)));
    const tiling = given || usable(chosen) ? chosen : (this.candidates().map(forwardTiling).find(usable) ?? chosen);
    return { encoder: encode(tiling), result: { output: out, logits, selected } };
  }

  /**
   * Times candidate tilings on this forward (TUNE_RUNS times each; the first, which may
   * compile and page in, dropped; the fastest of the rest kept, as a stray slow run must not
   * pick the tiling) and caches the fastest. First every candidate for both GEMMs, then, with
   * the up GEMMs at the winner's, every other candidate for the down GEMMs alone: the two
   * are different shapes (Mixtral's up is 28672 columns over K 4096, its down 4096 over K 14336).
   */
  private async tune(key: string, encode: (t: ForwardTiling) => GPUCommandEncoder, usable: (t: ForwardTiling) => boolean): Promise<ForwardTiling> {
    const known = this.tuned.get(key);
    if (known) return known.tiling;
    const timings: Record<string, number> = {};
    const tried: { tiling: ForwardTiling; ms: number }[] = [];
    const time = async (tiling: ForwardTiling) => {
      let ms = Infinity;
      for (let i = 0; i < TUNE_RUNS; i++) {
        const start = performance.now();
        this.device.queue.submit([encode(tiling).finish()]);
        await withTimeout(this.device.queue.onSubmittedWorkDone(), READBACK_TIMEOUT_MS, this.session.adapter.backend);
        if (i > 0) ms = Math.min(ms, performance.now() - start);
      }
      timings[tilingKey(tiling)] = ms;
      tried.push({ tiling, ms });
    };
    const fastest = () => tried.reduce((a, b) => (b.ms < a.ms ? b : a)).tiling;
    const candidates = this.candidates();
    for (const t of candidates.map(forwardTiling).filter(usable)) await time(t);
    // No candidate fits one dispatch: the largest tile, which rankScratch refuses with the counts.
    if (tried.length === 0) return forwardTiling(candidates[0]!);
    const { up } = fastest();
    for (const down of candidates) {
      const t = { up, down };
      if (!(tilingKey(t) in timings) && usable(t)) await time(t);
    }
    const best = fastest();
    this.tuned.set(key, { tiling: best, timings });
    return best;
  }

  /** One rank's device weights and the small tables that depend on neither the tokens' routing nor the tiling. */
  private plan(
    sem: MoeSemantics, layer: number, rank: RankTensors, weights: RankWeights, tokens: number, routing: RoutingResult | undefined,
    buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): RankPlan {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const n = weights.ids.length;
    const slotOf = new Int32Array(E).fill(-1);
    weights.ids.forEach((id, s) => {
      slotOf[id] = s;
    });
    const withShared = weights.shared !== undefined && rank.req.epRank === 0;
    const plan: RankPlan = {
      weights, n, slots: k + (withShared ? 1 : 0), slotOf: buffer(slotOf),
      w13: this.matrices(weights.w13), w2: this.matrices(weights.w2),
      ...this.biases(layer, rank, weights, weights.w2.cols, H, buffer),
    };
    if (withShared && weights.shared) {
      // The shared expert: once per TP shard, from EP rank 0 only, scaled by its gate where the model has one.
      const gate = sem.sharedGate ? buffer(wholeFloats(rank, `${p}shared.gate`, [1, H])) : undefined;
      const rowsParamsBuf = buffer(rowsParams(tokens, H, gate !== undefined, sem.sharedScale ?? 1), UNIFORM);
      const Rs = weights.shared.w2.cols;
      // inkling: each router-weighted shared expert's rows on this rank, weighted per token by its routing weight (routed on the CPU).
      const pieces = routing ? routedSharedPieces(sem, routing, rank.req.tpRank, Rs) : undefined;
      if (pieces) {
        const pos = buffer(Uint32Array.from({ length: tokens }, (_, t) => tokens * k + t));
        const [first, ...more] = pieces.map((piece): SharedPiecePlan => {
          const w = sharedPieceMatrices(weights.shared!.w13, weights.shared!.w2, H, Rs, piece.rows);
          return { w13: this.matrices(w.w13), w2: this.matrices(w.w2), R: w.w2.cols, rows: buffer(sharedRowTable(Float32Array.from(piece.weights))), pos };
        });
        plan.shared = { w13: first!.w13, w2: first!.w2, R: first!.R, rows: first!.rows, rowsParams: rowsParamsBuf, gate, more };
      } else {
        plan.shared = { w13: this.matrices(weights.shared.w13), w2: this.matrices(weights.shared.w2), R: Rs, rowsParams: rowsParamsBuf, gate };
      }
    }
    return plan;
  }

  /**
   * The scratch buffers of rank r's experts pass at this tiling: shared by the ranks, which run
   * one after the other, except the counts, which are cleared before the pass.
   */
  private rankScratch(sem: MoeSemantics, plan: RankPlan, tiling: ForwardTiling, tokens: number, r: number): RankScratch {
    const { hidden: H, topK: k } = sem;
    const pairs = tokens * k;
    const perA = plan.w13.chunks[0]?.count ?? 1;
    const perB = plan.w2.chunks[0]?.count ?? 1;
    const [capA, capB] = this.tileCapacities(plan, tiling, pairs);
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (capA > maxGroups || capB > maxGroups) {
      throw new WgslKernelError('grouped GEMM larger than one dispatch', { expected: `≤ ${maxGroups} row tiles`, found: Math.max(capA, capB) });
    }
    const R = plan.weights.w2.cols;
    const binding = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    const bytes = { 'expert activations (routed rows × R)': pairs * R * 4, 'expert outputs (rows × split-K parts × H)': outputBytes(plan, tiling, tokens, pairs, H) };
    for (const [what, size] of Object.entries(bytes)) {
      if (size > binding) throw new WgslKernelError(`${what} larger than one storage binding at ${tokens} tokens`, { expected: `≤ ${binding} bytes`, found: size });
    }
    return {
      counts: this.scratchBuffer(`counts${r}`, plan.n * 4),
      offsets: this.scratchBuffer('offsets', (3 * plan.n + 3) * 4),
      tilesA: this.scratchBuffer('tilesA', plan.w13.chunks.length * capA * 16),
      tilesB: this.scratchBuffer('tilesB', plan.w2.chunks.length * capB * 16),
      args: this.scratchBuffer('args', (plan.w13.chunks.length + plan.w2.chunks.length) * 12, STORAGE | INDIRECT),
      rows: this.scratchBuffer('rows', pairs * 16),
      pos: this.scratchBuffer('pos', tokens * plan.slots * 4),
      act: this.scratchBuffer('act', bytes['expert activations (routed rows × R)']),
      y: this.scratchBuffer('y', bytes['expert outputs (rows × split-K parts × H)']),
      capA, capB,
      plan: planParams({
        n: plan.n, TMA: tileRows(tiling.up), perA, capA, colsA: Math.ceil(R / (tileCols(tiling.up) / 2)), chunksA: plan.w13.chunks.length,
        TMB: tileRows(tiling.down), perB, capB, colsB: Math.ceil(H / tileCols(tiling.down)), chunksB: plan.w2.chunks.length, splitsB: splitsOf(tiling.down),
      }),
    };
  }

  /** Entries of one weight chunk's tile table (w13's at the up tiling, w2's at the down one): Σ ceil(rows_s / TM) ≤ rows / TM + experts of the chunk, rounded up to the binding alignment. */
  private tileCapacities(plan: RankPlan, tiling: ForwardTiling, pairs: number): [number, number] {
    const align = Math.max(1, this.device.limits.minStorageBufferOffsetAlignment / 16);
    const cap = (t: GemmTiling, per: number) => Math.ceil((Math.ceil(pairs / tileRows(t)) + per) / align) * align;
    return [cap(tiling.up, plan.w13.chunks[0]?.count ?? 1), cap(tiling.down, plan.w2.chunks[0]?.count ?? 1)];
  }

  /**
   * Whether this forward can run at `tiling`: every GEMM's row tiles within one dispatch (the
   * device's workgroups per dimension) and the expert outputs (split-K parts included) within
   * one storage binding.
   */
  private fitsDevice(plans: RankPlan[], tiling: ForwardTiling, sem: MoeSemantics, tokens: number): boolean {
    const { limits } = this.device;
    const max = limits.maxComputeWorkgroupsPerDimension;
    const pairs = tokens * sem.topK;
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    return [tiling.up, tiling.down].every((t) => Math.ceil(tokens / tileRows(t)) <= max)
      && plans.every((plan) => outputBytes(plan, tiling, tokens, pairs, sem.hidden) <= binding && this.tileCapacities(plan, tiling, pairs).every((c) => c <= max));
  }

  private encodeRank(
    pass: GPUComputePassEncoder, sem: MoeSemantics, plan: RankPlan, s: RankScratch, tiling: ForwardTiling, xBuf: GPUBuffer, selected: GPUBuffer, routeWeights: GPUBuffer,
    tokens: number, r: number, zeros: GPUBuffer, buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): void {
    const { hidden: H, experts: E, topK: k } = sem;
    const pairs = tokens * k;
    const R = plan.weights.w2.cols;
    const { mode, alpha, limit } = activationParams(sem.activation);
    if (plan.n > 0) {
      const groups = Math.ceil(pairs / 128);
      this.dispatch(pass, this.compile('count', COUNT_SHADER), [buffer(new Uint32Array([pairs, E, 0, 0]), UNIFORM), selected, plan.slotOf, s.counts], groups);
      this.dispatch(pass, this.compile('plan', PLAN_SHADER), [buffer(s.plan, UNIFORM), s.counts, s.offsets, s.tilesA, s.tilesB, s.args], 1);
      const inputScale = sem.routing.kind === 'topk_sigmoid_input' ? 1 : 0;
      this.dispatch(pass, this.compile('scatter', SCATTER_SHADER), [buffer(new Uint32Array([pairs, k, plan.slots, inputScale, pairs, E, 0, 0]), UNIFORM), selected, routeWeights, plan.slotOf, s.offsets, s.rows, s.pos], groups);
      const up: GemmParams = { N: R, K: H, rowsB: 2 * R, upRow: R, ldc: R, cOff: 0, hasBias: plan.b13 !== undefined, mode, alpha, limit };
      const down: GemmParams = { N: H, K: R, rowsB: H, upRow: 0, ldc: H, cOff: 0, hasBias: plan.b2 !== undefined, mode: 0, alpha: 0, limit: 0, ...splitK(tiling.down, R) };
      this.groupedIndirect(pass, 'up', tiling.up, plan.w13, up, s.rows, xBuf, plan.b13 ?? zeros, s.act, s.tilesA, s.capA, s.args, 0, buffer);
      this.groupedIndirect(pass, 'down', tiling.down, plan.w2, down, s.rows, s.act, plan.b2 ?? zeros, s.y, s.tilesB, s.capB, s.args, 3 * plan.w13.chunks.length, buffer);
    } else {
      // No local experts: every routed slot of the combine is empty.
      this.dispatch(pass, this.compile('scatter', SCATTER_SHADER), [buffer(new Uint32Array([pairs, k, plan.slots, 0, pairs, E, 0, 0]), UNIFORM), selected, routeWeights, plan.slotOf, zeros, s.rows, s.pos], Math.ceil(pairs / 128));
    }
    const shared = plan.shared;
    // The shared expert, or one run of it (inkling), over every token: its rows of y from `pairs` on.
    const sharedGemms = (piece: { w13: DeviceMatrices; w2: DeviceMatrices; R: number }, rows: GPUBuffer) => {
      // Sized for the rank's whole shared expert (the same on every rank): a run of it (inkling) never grows it under earlier commands.
      const actS = this.scratchBuffer('actS', tokens * (plan.weights.shared?.w2.cols ?? piece.R) * 4);
      const R = piece.R;
      const up: GemmParams = { N: R, K: H, rowsB: 2 * R, upRow: R, ldc: R, cOff: 0, hasBias: false, ...activationParams(sem.sharedActivation ?? SILU_GATED) };
      const down: GemmParams = { N: H, K: R, rowsB: H, upRow: 0, ldc: H, cOff: pairs, hasBias: false, mode: 0, alpha: 0, limit: 0, ...splitK(tiling.down, R) };
      this.grouped(pass, 'up', tiling.up, piece.w13, [0, tokens], up, rows, xBuf, zeros, actS, buffer);
      this.grouped(pass, 'down', tiling.down, piece.w2, [0, tokens], down, rows, actS, zeros, s.y, buffer);
    };
    if (shared) {
      const sharedRows = shared.rows ?? this.scratchBuffer('sharedRows', tokens * 16);
      if (!shared.rows) this.dispatch(pass, this.compile('rows', ALL_ROWS_SHADER), [shared.rowsParams, xBuf, shared.gate ?? zeros, sharedRows], Math.ceil(tokens / 64));
      sharedGemms(shared, sharedRows);
    }
    this.dispatch(pass, this.compile('combine', COMBINE_SHADER), [buffer(combineParams(tokens, H, plan.slots, r > 0, tiling.down), UNIFORM), s.pos, s.y, this.scratch.get('out')!], Math.ceil((tokens * H) / 128));
    // inkling: the other router-weighted shared experts' runs, each into the shared rows of y and added by a combine of its own.
    for (const more of shared?.more ?? []) {
      sharedGemms(more, more.rows);
      this.dispatch(pass, this.compile('combine', COMBINE_SHADER), [buffer(combineParams(tokens, H, 1, true, tiling.down), UNIFORM), more.pos, s.y, this.scratch.get('out')!], Math.ceil((tokens * H) / 128));
    }
  }

  /**
   * The routed GEMM: one indirect dispatch per weight chunk, whose row tiles and their count
   * the PLAN shader wrote (chunk c's tiles at c·cap of `tiles`, its arguments at word
   * `argsAt + 3c` of `args`).
   */
  private groupedIndirect(
    pass: GPUComputePassEncoder, mode: GemmMode, tiling: GemmTiling, w: DeviceMatrices, params: GemmParams, rows: GPUBuffer, a: GPUBuffer, bias: GPUBuffer, c: GPUBuffer,
    tiles: GPUBuffer, cap: number, args: GPUBuffer, argsAt: number, buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): void {
    const pipeline = this.pipeline(mode, tiling, w.dtype, vecLoads(tiling, params.K));
    const uniform = buffer(gemmParams(params), UNIFORM);
    w.chunks.forEach((chunk, i) => {
      const group = this.pool.bindGroup(pipeline, [{ buffer: uniform }, { buffer: tiles, offset: i * cap * 16, size: cap * 16 }, ...[rows, a, chunk.buffer, bias, c].map((b) => ({ buffer: b }))]);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroupsIndirect(args, (argsAt + 3 * i) * 4);
    });
  }

  /**
   * One dispatch per weight chunk: every expert of the chunk that has rows (`offsets[s] ..
   * offsets[s+1]` for slot s) cut into tiles of the tiling's rows, against every column tile.
   */
  private grouped(
    pass: GPUComputePassEncoder, mode: GemmMode, tiling: GemmTiling, w: DeviceMatrices, offsets: ArrayLike<number>, params: GemmParams,
    rows: GPUBuffer, a: GPUBuffer, bias: GPUBuffer, c: GPUBuffer, buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): void {
    const TM = tileRows(tiling);
    const columnTiles = Math.ceil(params.N / (mode === 'up' ? tileCols(tiling) / 2 : tileCols(tiling)));
    const pipeline = this.pipeline(mode, tiling, w.dtype, vecLoads(tiling, params.K));
    const uniform = buffer(gemmParams(params), UNIFORM);
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    for (const chunk of w.chunks) {
      const tiles: number[] = [];
      for (let s = chunk.first; s < chunk.first + chunk.count; s++) {
        for (let m = offsets[s]!; m < offsets[s + 1]!; m += TM) tiles.push(s - chunk.first, m, Math.min(m + TM, offsets[s + 1]!), s);
      }
      if (tiles.length === 0) continue;
      const count = tiles.length / 4;
      if (count > maxGroups || columnTiles > maxGroups) {
        throw new WgslKernelError('grouped GEMM larger than one dispatch', { expected: `≤ ${maxGroups} row and column tiles`, found: `${count} × ${columnTiles}` });
      }
      const group = this.pool.bindGroup(pipeline, [uniform, buffer(Uint32Array.from(tiles)), rows, a, chunk.buffer, bias, c].map((b) => ({ buffer: b })));
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(count, columnTiles, params.splits ?? 1);
    }
  }

  /** One thread per element (128 per workgroup; a flat shader, flat.ts), over as many rows of the device's workgroups per dimension as needed. */
  private dispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, buffers: GPUBuffer[], groups: number): void {
    const group = this.pool.bindGroup(pipeline, buffers.map((buffer) => ({ buffer })));
    const row = this.device.limits.maxComputeWorkgroupsPerDimension;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.min(groups, row), Math.ceil(groups / row));
  }

  private createBuffer(size: number, usage: number): GPUBuffer {
    // A mappable buffer may only be a copy destination besides; sizes padded for vec4 views.
    return this.device.createBuffer({ size: paddedSize(size), usage: usage === MAP_READ ? MAP_READ | COPY_DST : usage | COPY_DST | COPY_SRC });
  }

  /** Copies `bytes` to the start of `b` in pieces, the last one padded to whole words. */
  private writeAt(b: GPUBuffer, bytes: Uint8Array, at = 0): void {
    for (let off = 0; off < bytes.length; off += UPLOAD_PIECE) {
      let piece = bytes.subarray(off, Math.min(off + UPLOAD_PIECE, bytes.length));
      // Dawn takes no SharedArrayBuffer views (worker-filled weights): those go through a copy too.
      if (piece.length % 4 !== 0 || piece.byteOffset % 4 !== 0 || !(piece.buffer instanceof ArrayBuffer)) {
        const padded = new Uint8Array(Math.ceil(piece.length / 4) * 4);
        padded.set(piece);
        piece = padded;
      }
      this.device.queue.writeBuffer(b, at + off, piece.buffer, piece.byteOffset, piece.length);
    }
  }

  /** A maker of buffers for one forward (a size: zeroed, or data to copy in), from the pool of the forwards before (pool.ts). */
  private temporary(): (data: ArrayBufferView | number, usage?: number) => GPUBuffer {
    return (data, usage = STORAGE) => {
      const size = typeof data === 'number' ? data : data.byteLength;
      const b = this.pool.take(size, usage, typeof data !== 'number', () => this.createBuffer(size, usage));
      if (typeof data !== 'number') this.writeAt(b, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return b;
    };
  }

  /** A buffer kept across forwards (only grown), for per-forward intermediates. */
  private scratchBuffer(name: string, size: number, usage = STORAGE): GPUBuffer {
    const have = this.scratch.get(name);
    if (have && have.size >= size) return have;
    have?.destroy();
    const b = this.createBuffer(Math.max(size, 16), usage);
    this.scratch.set(name, b);
    return b;
  }

  /** Writes `bytes` into the kept upload staging buffer, copies it into `dst` (submitted now) and maps the staging buffer again for the next upload. */
  private async uploadStaged(dst: GPUBuffer, bytes: Uint8Array): Promise<void> {
    const size = Math.max(16, Math.ceil(bytes.length / 16) * 16);
    if (!this.upload || this.upload.buffer.size < size) {
      this.upload?.buffer.destroy();
      this.upload = { buffer: this.device.createBuffer({ size, usage: MAP_WRITE | COPY_SRC, mappedAtCreation: true }), ready: Promise.resolve() };
    }
    const up = this.upload;
    await withTimeout(up.ready, READBACK_TIMEOUT_MS, this.session.adapter.backend);
    new Uint8Array(up.buffer.getMappedRange(0, size)).set(bytes);
    up.buffer.unmap();
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(up.buffer, 0, dst, 0, size);
    this.device.queue.submit([encoder.finish()]);
    up.ready = up.buffer.mapAsync(MAP_WRITE);
    up.ready.catch(() => undefined);
  }

  /**
   * Submits `encoder` after copies of `[buffer, words]` pairs into the kept readback buffer
   * (one after the other, 16-byte aligned), maps it once and returns each one's bytes.
   */
  private async readBack(encoder: GPUCommandEncoder, parts: [GPUBuffer, number][]): Promise<ArrayBuffer[]> {
    const at: number[] = [];
    let size = 0;
    for (const [, words] of parts) {
      at.push(size);
      size += Math.max(16, Math.ceil((words * 4) / 16) * 16);
    }
    if (!this.readback || this.readback.size < size) {
      this.readback?.destroy();
      this.readback = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
    }
    const staging = this.readback;
    parts.forEach(([src, words], i) => encoder.copyBufferToBuffer(src, 0, staging, at[i]!, Math.min(src.size, Math.ceil((words * 4) / 16) * 16)));
    this.device.queue.submit([encoder.finish()]);
    try {
      await withTimeout(staging.mapAsync(MAP_READ, 0, size), READBACK_TIMEOUT_MS, this.session.adapter.backend);
    } catch (e) {
      throw new WgslKernelError(`readback failed: ${(e as Error).message}`, { expected: 'mapped result', found: 'no mapping' });
    }
    const mapped = staging.getMappedRange(0, size);
    const out = parts.map(([, words], i) => mapped.slice(at[i]!, at[i]! + words * 4));
    staging.unmap();
    return out;
  }

  /** Resident matrices of `w`, uploaded on first use (released with the expert weights). */
  private residentMatrices(w: StackedMatrices): DeviceMatrices {
    let m = this.resident.get(w.tensor);
    if (!m) {
      m = this.toDevice(w, (size) => this.createBuffer(size, STORAGE));
      this.resident.set(w.tensor, m);
    }
    return m;
  }

  /** The rank's expert biases on the device (f32), kept with resident weights, else uploaded for this forward. */
  private biases(
    layer: number, rank: RankTensors, weights: RankWeights, R: number, H: number, buffer: (d: ArrayBufferView | number) => GPUBuffer,
  ): { b13?: GPUBuffer; b2?: GPUBuffer } {
    const kept = this.options.residentWeights ? this.residentBiases.get(weights.w13.tensor) : undefined;
    if (kept) return kept;
    const b = expertBiases(layer, rank, weights.ids.length, R, H);
    const make = this.options.residentWeights
      ? (d: Float32Array) => {
        const g = this.createBuffer(d.byteLength, STORAGE);
        this.writeAt(g, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        return g;
      }
      : (d: Float32Array) => buffer(d);
    const out = { b13: b.w13 ? make(b.w13) : undefined, b2: b.w2 ? make(b.w2) : undefined };
    if (this.options.residentWeights) this.residentBiases.set(weights.w13.tensor, out);
    return out;
  }

  /** The stacked matrices of `w` on the device: resident, or uploaded into this forward's buffers (taken as with contents: toDevice writes every byte, so a kept one is not zeroed first). */
  private matrices(w: StackedMatrices): DeviceMatrices {
    return this.resident.get(w.tensor) ?? this.toDevice(w, (size) => this.pool.take(size, STORAGE, true, () => this.createBuffer(size, STORAGE)));
  }

  /** Cuts `w` into chunks of whole matrices within the binding limit and uploads them as stored (f32/bf16/f16) or decoded to f32. */
  private toDevice(w: StackedMatrices, make: (size: number) => GPUBuffer): DeviceMatrices {
    const dtype = dtypeOf(w) ?? 'f32';
    const raw = dtypeOf(w) !== undefined;
    const elementBytes = dtype === 'f32' ? 4 : 2;
    const matrixBytes = w.rows * w.cols * elementBytes;
    const limit = Math.min(this.options.chunkBytes ?? Infinity, this.session.adapter.maxStorageBufferBytes - 16);
    const perChunk = Math.max(1, Math.min(w.count, Math.floor(limit / Math.max(1, matrixBytes))));
    if (matrixBytes > this.session.adapter.maxStorageBufferBytes - 16) {
      throw new WgslKernelError('one expert matrix exceeds the device storage binding limit', { tensor: w.name, expected: `≤ ${this.session.adapter.maxStorageBufferBytes} bytes`, found: matrixBytes });
    }
    const chunks: WeightChunk[] = [];
    for (let first = 0; first < w.count; first += perChunk) {
      const count = Math.min(perChunk, w.count - first);
      const b = make(count * matrixBytes);
      if (raw) {
        this.writeAt(b, w.tensor.bytes.subarray(first * matrixBytes, (first + count) * matrixBytes));
      } else {
        for (let i = 0; i < count; i++) this.writeAt(b, matrixBytesF32(w, first + i), i * matrixBytes);
      }
      chunks.push({ first, count, buffer: b });
    }
    return { dtype, chunks };
  }

  /** Makes every expert matrix of these ranks resident, replacing what was, unless it is the same tensors. */
  private hold(weights: RankWeights[]): void {
    const all = weights.flatMap((w) => (w.shared ? [w.w13, w.w2, w.shared.w13, w.shared.w2] : [w.w13, w.w2]));
    if (all.every((w) => this.resident.has(w.tensor))) return;
    this.releaseResident();
    for (const w of all) {
      // A tensor shared by ranks (the shared expert, say) goes up once.
      if (!this.resident.has(w.tensor)) this.resident.set(w.tensor, this.toDevice(w, (size) => this.createBuffer(size, STORAGE)));
    }
  }

  private releaseResident(): void {
    for (const m of this.resident.values()) for (const c of m.chunks) c.buffer.destroy();
    this.resident.clear();
    for (const b of this.residentBiases.values()) for (const g of [b.b13, b.b2]) g?.destroy();
    this.residentBiases.clear();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    this.releaseResident();
    for (const b of this.scratch.values()) b.destroy();
    this.scratch.clear();
    this.pool.dispose();
    this.readback?.destroy();
    this.upload?.buffer.destroy();
    await this.session.dispose();
  }
}

/** What a forward's routing takes from the host: a hash layer's fixed choice, an MLP router's logits. */
interface HostRouterInputs {
  hash?: HashChoice;
  logits?: Float32Array;
}

/** The router's rows: the experts, or doge's 2·keys product keys. */
const routerRows = (sem: MoeSemantics): number => sem.routerRows ?? sem.experts;

/**
 * Routing that runs on the CPU with the shared code: sparsemixer, hash and product-key routing (no shader), an MLP router, and the
 * routings that scale weights by more of the block's tensors (gemma4's per-expert output
 * scales, inkling's global scale and router-weighted shared experts).
 */
function hostRouting(sem: MoeSemantics): boolean {
  return sem.mlpRouter !== undefined || routingProgram(sem.routing) === undefined || sem.expertOutputScale === true || sem.routerGlobalScale === true || (sem.sharedRouted ?? 0) > 0;
}

/** The shared expert's row table where the routing weights it: row t is (t, 1, scale_t). */
function sharedRowTable(scales: Float32Array): Uint32Array {
  const table = new Uint32Array(4 * scales.length);
  const bits = new Uint32Array(scales.buffer, scales.byteOffset, scales.length);
  for (let t = 0; t < scales.length; t++) {
    table[4 * t] = t;
    table[4 * t + 1] = 0x3f800000;
    table[4 * t + 2] = bits[t]!;
  }
  return table;
}

/** The COMBINE uniform (shaders.ts): tokens, hidden, slots per token, whether to add to the output, split-K parts of the down tiling. */
function combineParams(tokens: number, hidden: number, slots: number, accumulate: boolean, down: GemmTiling): Uint32Array {
  return new Uint32Array([tokens, hidden, slots, accumulate ? 1 : 0, splitsOf(down), 0, 0, 0]);
}

/** Bytes of a rank's expert outputs y: its routed rows and, where it computes the shared expert, a row per token, each in the down tiling's split-K parts. */
function outputBytes(plan: RankPlan, tiling: ForwardTiling, tokens: number, pairs: number, hidden: number): number {
  return (pairs + (plan.shared ? tokens : 0)) * splitsOf(tiling.down) * hidden * 4;
}

/** The down GEMM's split-K parts at this tiling (shaders.ts kChunkOf). */
const splitsOf = (t: GemmTiling): number => t.splitK ?? 1;

/** A down GEMM's split-K parameters at this tiling. */
function splitK(t: GemmTiling, K: number): { splits: number; kChunk: number } {
  const splits = splitsOf(t);
  return { splits, kChunk: splits > 1 ? kChunkOf(K, splits) : K };
}

/** A buffer's size as made: whole 16-byte units (vec4 views), at least one. */
const paddedSize = (size: number): number => Math.max(16, Math.ceil(size / 16) * 16);

/** The routing shader's uniform: tokens, -inf, +inf (routing.ts). */
function routingParams(tokens: number): Uint32Array {
  const words = new Uint32Array([tokens, 0, 0, 0]);
  new Float32Array(words.buffer).set([-Infinity, Infinity], 1);
  return words;
}

/** The ALL_ROWS uniform (grouping.ts). */
function rowsParams(tokens: number, hidden: number, gated: boolean, scale: number): Uint32Array {
  const words = new Uint32Array([tokens, hidden, gated ? 1 : 0, 0]);
  new Float32Array(words.buffer).set([scale], 3);
  return words;
}

/** The shaders without variants, compiled when the backend is made. */
const FIXED_SHADERS: [string, string][] = [
  ['rows', ALL_ROWS_SHADER], ['count', COUNT_SHADER], ['plan', PLAN_SHADER], ['scatter', SCATTER_SHADER], ['combine', COMBINE_SHADER], ['zero', ZERO_EXPERTS_SHADER],
];

/** The epilogue's activation parameters (shaders.ts GemmParams.mode). */
function activationParams(a: ExpertActivation): { mode: number; alpha: number; limit: number } {
  if (a.kind === 'gpt_oss_clamped') return { mode: 1, alpha: a.alpha, limit: a.limit };
  if (a.kind === 'silu_clamped') return { mode: 3, alpha: 0, limit: a.limit };
  if (a.kind === 'silu_clamped_after') return { mode: 4, alpha: 0, limit: a.limit };
  if (a.kind === 'gelu_tanh_gated') return { mode: 5, alpha: 0, limit: 0 };
  if (a.kind === 'silu') return { mode: 6, alpha: 0, limit: 0 };
  return { mode: a.kind === 'relu2' ? 2 : 0, alpha: 0, limit: 0 };
}
