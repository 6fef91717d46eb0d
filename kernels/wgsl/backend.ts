/// <reference types="@webgpu/types" />
// The MoE forward as hand-written WGSL (`wgsl-webgpu`) on the WebGPU device that
// kernels/gpujs/device.ts acquires through Dawn (one device per process, shared with
// gpu.js). Two round trips per forward: router logits (selection runs on the CPU with the
// shared routing code), then, in one compute pass read back once, per rank: one grouped GEMM
// dispatch for gate/up with the activation fused (all experts of a weight chunk at once, rows
// grouped by expert in one counting pass), one grouped GEMM for down with the bias and the
// routing weight fused, the shared expert likewise, and one combine that sums each token's
// expert rows. Weights are read as stored (f32, bf16, f16; other dtypes decoded to f32 on the
// CPU). A rank's stacked weights are cut into chunks of whole experts that fit the device's
// largest storage binding, one dispatch per chunk. Tilings are chosen per shape (a small
// autotune when asked, cached; otherwise by rows per expert). Same rank-summing semantics as
// the CPU fast path (kernels/fast/canonical.ts).
import { createRequire } from 'node:module';
import { atLayer, SILU_GATED, type ExpertActivation, type MoeSemantics } from '../../harness/layouts/semantics.js';
import type { ForwardInputs, MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { MoeConformanceError } from '../../harness/errors.js';
import { LITTLE_ENDIAN_HOST } from '../../harness/safetensors/codecs.js';
import { openWebGpu, withTimeout, type AdapterDescription, type WebGpuOptions, type WebGpuSession } from '../gpujs/device.js';
import {
  expertBiases, groupByExpert, matrixBytesF32, rankWeights, routeLogits, sharedBatch, wholeFloats, type RankWeights, type StackedMatrices,
} from '../fast/canonical.js';
import { tensorOf } from '../experts.js';
import { checkForwardInput } from '../moe.js';
import { kernelForm } from '../kernel-form.js';
import { applyOutputNorm } from '../output-norm.js';
import { addZeroExperts } from '../routing.js';
import { blockInputsF32, routedSharedScale } from '../block-inputs.js';
import { concatRoutings, hashChoiceOf, hashPart, type HashChoice, type RoutingResult } from '../routing.js';
import { mlpRouterLogitsF32 } from '../mlp-router.js';
import {
  CANDIDATE_TILINGS, COMBINE_SHADER, gemmParams, gemmShader, tileCols, tileRows, workgroupBytes,
  type GemmMode, type GemmParams, type GemmTiling, type WeightDtype,
} from './shaders.js';

/** The device rejected a buffer, pipeline or dispatch, or a readback did not come back. */
export class WgslKernelError extends MoeConformanceError {}

// GPUBufferUsage / GPUMapMode values (WebGPU spec), as Node has no such globals.
const MAP_READ = 0x0001;
const MAP_WRITE = 0x0002;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;
const READBACK_TIMEOUT_MS = 120_000;
const NONE = 0xffffffff;
/** Largest single queue.writeBuffer. */
const UPLOAD_PIECE = 64 << 20;

export interface WgslOptions extends WebGpuOptions {
  /** One tiling for every GEMM (no autotune). */
  tiling?: GemmTiling;
  /** Time the candidate tilings on the first forward of each shape and keep the fastest. */
  autotune?: boolean;
  /** Keep the last forward's weights on the device across forwards (same contract as the CPU path's). */
  residentWeights?: boolean;
  /** Largest weight chunk in bytes (default: the device's largest storage binding); for tests of chunking. */
  chunkBytes?: number;
  /**
   * Tokens per pipelined part of the experts pass (default: all in one part): part p+1 is
   * routed on the CPU while the GPU computes part p, and part p's output is read back while
   * later parts compute. Not yet measured on a GPU (spec/gpu.md), so off by default.
   */
  partTokens?: number;
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

/** One rank's work, independent of the tiling. */
interface RankPlan {
  weights: RankWeights;
  grouping: ReturnType<typeof groupByExpert>;
  rows: GPUBuffer;
  b13?: GPUBuffer;
  b2?: GPUBuffer;
  shared?: { rows: GPUBuffer; R: number };
  pos: GPUBuffer;
  slots: number;
}

interface TuneEntry {
  tiling: GemmTiling;
  timings: Record<string, number>;
}

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
  /** Resident biases, by the rank's w13 tensor. */
  private readonly residentBiases = new Map<object, { b13?: GPUBuffer; b2?: GPUBuffer }>();
  /**
   * Kept mappable buffers: the upload staging (mapped again right after each submit, so the
   * next forward writes into it at once) and the readbacks. Fresh mappable buffers per
   * forward cost a page fault per 4 KiB on the host, which made transfers run at about 1 GB/s.
   */
  private upload?: { buffer: GPUBuffer; ready: Promise<unknown> };
  private readonly readbacks = new Map<string, GPUBuffer>();
  private combine: GPUComputePipeline;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** Wall-clock ms of the last forward's phases: router round trip, routing and tables on the CPU, experts round trip. */
  lastPhases: { router: number; routing: number; experts: number } = { router: 0, routing: 0, experts: 0 };

  private constructor(
    private readonly session: WebGpuSession,
    private readonly device: GPUDevice,
    private readonly options: WgslOptions,
  ) {
    this.combine = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: COMBINE_SHADER }), entryPoint: 'main' } });
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

  /** Opens (or joins) the process's WebGPU session and compiles the combine kernel (GEMM variants compile on first use). */
  static async create(options: WgslOptions = {}): Promise<WgslWebGpuBackend> {
    const session = await openWebGpu(options);
    try {
      const { device } = (await (require('gpu.js') as { WebGPUContext: { acquire(): Promise<{ device: GPUDevice }> } }).WebGPUContext.acquire());
      if (options.tiling && !WgslWebGpuBackend.fits(device, options.tiling)) {
        throw new WgslKernelError(`tiling ${JSON.stringify(options.tiling)} exceeds this device's workgroup limits`, { expected: `≤ ${device.limits.maxComputeInvocationsPerWorkgroup} invocations, ≤ ${device.limits.maxComputeWorkgroupStorageSize} bytes`, found: JSON.stringify(options.tiling) });
      }
      device.pushErrorScope('validation');
      const backend = new WgslWebGpuBackend(session, device, options);
      backend.pipeline('down', options.tiling ?? backend.candidates()[0]!, 'f32', true);
      const error = await device.popErrorScope();
      if (error) throw new WgslKernelError(`WGSL kernels rejected by the device: ${error.message}`, { expected: 'valid pipelines', found: error.message });
      return backend;
    } catch (e) {
      await session.dispose();
      throw e;
    }
  }

  private static fits(device: GPUDevice, t: GemmTiling): boolean {
    return t.wx * t.wy <= device.limits.maxComputeInvocationsPerWorkgroup && t.wx <= device.limits.maxComputeWorkgroupSizeX
      && t.wy <= device.limits.maxComputeWorkgroupSizeY && workgroupBytes(t) <= device.limits.maxComputeWorkgroupStorageSize;
  }

  /** The candidate tilings this device can run, largest tile first. */
  private candidates(): GemmTiling[] {
    const fit = CANDIDATE_TILINGS.filter((t) => WgslWebGpuBackend.fits(this.device, t));
    if (fit.length === 0) throw new WgslKernelError('no GEMM tiling fits this device', { expected: 'a candidate within the workgroup limits', found: JSON.stringify(this.device.limits.maxComputeInvocationsPerWorkgroup) });
    return fit;
  }

  /** Without autotune: the largest tile whose rows the average expert fills. */
  private heuristic(rowsPerExpert: number): GemmTiling {
    const fit = this.candidates();
    return fit.find((t) => tileRows(t) <= Math.max(16, rowsPerExpert)) ?? fit[fit.length - 1]!;
  }

  private pipeline(mode: GemmMode, tiling: GemmTiling, dtype: WeightDtype, vec: boolean): GPUComputePipeline {
    const key = JSON.stringify([mode, tiling, dtype, vec]);
    let p = this.pipelines.get(key);
    if (!p) {
      const code = gemmShader({ mode, tiling, dtype, vec });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code }), entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, inputs?: ForwardInputs): Promise<MoeForwardResult> {
    if (this.disposed) throw new WgslKernelError('wgsl-webgpu backend used after dispose');
    sem = atLayer(sem, layer);
    checkForwardInput(sem, layer, ranks, x, tokens);
    const hash = hashChoiceOf(sem, layer, ranks[0]!, tokens, inputs);
    // An MLP router (zaya) is computed by the shared code on the CPU, like the selection.
    const mlpLogits = sem.mlpRouter && tokens > 0 ? mlpRouterLogitsF32(sem, layer, ranks[0]!, x, tokens, inputs) : undefined;
    ranks = kernelForm(sem, ranks);
    const weights = ranks.map((rank) => rankWeights(sem, layer, rank));
    if (tokens === 0) return { output: new Float32Array(0), routerLogits: new Float32Array(0), selected: new Int32Array(0) };
    // Forwards share scratch buffers: one at a time.
    const run = this.queue.then(() => this.guarded(sem, layer, ranks, weights, x, tokens, hash, mlpLogits));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async guarded(sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], x: Float32Array, tokens: number, hash: HashChoice | undefined, mlpLogits?: Float32Array): Promise<MoeForwardResult> {
    const temp: GPUBuffer[] = [];
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    try {
      return await this.forwardOn(sem, layer, ranks, weights, x, tokens, temp, hash, mlpLogits);
    } finally {
      const oom = await this.device.popErrorScope();
      const invalid = await this.device.popErrorScope();
      for (const b of temp) b.destroy();
      const error = oom ?? invalid;
      // Thrown from finally on purpose: a forward the device rejected has no valid output.
      // eslint-disable-next-line no-unsafe-finally
      if (error) throw new WgslKernelError(`device rejected the forward: ${error.message}`, { layer, expected: 'no device error', found: error.message });
    }
  }

  private async forwardOn(
    sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], x: Float32Array, tokens: number, temp: GPUBuffer[], hash: HashChoice | undefined, mlpLogits?: Float32Array,
  ): Promise<MoeForwardResult> {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const buffer = (data: ArrayBufferView | number, usage = STORAGE): GPUBuffer => {
      const b = this.createBuffer(typeof data === 'number' ? data : data.byteLength, usage);
      if (typeof data !== 'number') this.writeAt(b, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      temp.push(b);
      return b;
    };
    if (this.options.residentWeights) this.hold(weights);
    const t0 = performance.now();
    // Router and experts read their own inputs where the block normalises them (gemma4).
    const r0 = ranks[0]!;
    const normed = blockInputsF32(sem, layer, r0, x, tokens);
    x = normed.experts;
    const bytesOf = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    const xBuf = this.scratchBuffer('x', tokens * H * 4);
    let encoder = this.device.createCommandEncoder();
    await this.staged(encoder, xBuf, bytesOf(x));
    const xRouter = normed.router === x ? xBuf : buffer(bytesOf(normed.router));
    const zeros = buffer(16);

    // Round trip 1: router logits, a one-expert `down` GEMM over every token (an MLP router's come from the CPU).
    let logits: Float32Array;
    if (mlpLogits) {
      this.device.queue.submit([encoder.finish()]);
      encoder = this.device.createCommandEncoder();
      logits = mlpLogits;
    } else {
      // Router rows: the experts, or doge's 2·keys product keys.
      const rows = sem.routerRows ?? E;
      const router: StackedMatrices = { tensor: tensorOf(r0, `${p}router.weight`, [rows, H]), name: `${p}router.weight`, count: 1, rows, cols: H };
      const routerW = this.options.residentWeights ? this.residentMatrices(router) : this.matrices(router, buffer);
      const all = sharedBatch(x, tokens, H, undefined);
      const routerRows = buffer(rowTable(all.tokens, all.inputScale, all.outputScale));
      const logitsBuf = buffer(tokens * rows * 4);
      // Thin tiles: the router has few columns (E), so many row tiles keep the multiprocessors busy.
      const routerTiling = this.options.tiling ?? this.heuristic(16);
      const pass = encoder.beginComputePass();
      this.grouped(pass, 'down', routerTiling, routerW, [0, tokens], { N: rows, K: H, rowsB: rows, upRow: 0, ldc: rows, cOff: 0, hasBias: false, mode: 0, alpha: 0, limit: 0 }, routerRows, xRouter, zeros, logitsBuf, buffer);
      pass.end();
      logits = await this.read(encoder, logitsBuf, tokens * rows, 'logits');
    }
    const t1 = performance.now();
    let cpuMs = 0;

    // Then the experts, in pipelined parts of the tokens: route and plan a part on the CPU,
    // submit it, and move on while the GPU computes it; each part's rows come back by themselves.
    // Product keys (doge) read every token's logits together: one part.
    const part = sem.routing.kind === 'product_key' ? tokens : Math.max(1, this.options.partTokens ?? tokens);
    const outBuf = this.scratchBuffer('out', tokens * H * 4);
    const routings: RoutingResult[] = [];
    const reads: Promise<Float32Array>[] = [];
    for (let c0 = 0, index = 0; c0 < tokens; c0 += part, index++) {
      const n = Math.min(part, tokens - c0);
      const c = performance.now();
      const L = sem.routerRows ?? E;
      const routing = routeLogits(sem, layer, r0, logits.subarray(c0 * L, (c0 + n) * L), n, hashPart(hash, c0, c0 + n));
      routings.push(routing);
      const xPart = x.subarray(c0 * H, (c0 + n) * H);
      const plans = ranks.map((rank, r) => this.plan(sem, layer, rank, weights[r]!, routing, xPart, n, c0, buffer));
      cpuMs += performance.now() - c;
      const key = [H, sem.intermediate, sem.sharedIntermediate, E, k, ranks.length, weights[0]!.w13.tensor.dtype, Math.round(Math.log2(Math.max(1, (n * k) / E)))].join('/');
      const encodeExperts = (tiling: GemmTiling): GPUCommandEncoder => {
        const enc = this.device.createCommandEncoder();
        const ps = enc.beginComputePass();
        plans.forEach((plan, r) => this.encodeRank(ps, sem, plan, tiling, xBuf, n, part, c0, r, zeros, buffer));
        ps.end();
        return enc;
      };
      const tiling = this.options.tiling ?? (this.options.autotune ? await this.tune(key, encodeExperts) : this.heuristic((n * k) / E));
      reads.push(this.submitRead(encodeExperts(tiling), outBuf, c0 * H, n * H, `out${index}`));
    }
    const parts = await Promise.all(reads);
    // One part is the whole output as read; parts are joined in token order.
    const output = parts.length === 1 ? parts[0]! : new Float32Array(tokens * H);
    if (parts.length > 1) parts.forEach((values, i) => output.set(values, i * part * H));
    const routing = concatRoutings(routings);
    this.lastPhases = { router: t1 - t0, routing: cpuMs, experts: performance.now() - t1 - cpuMs };
    addZeroExperts(sem, routing, x, tokens, output);
    applyOutputNorm(sem, layer, ranks, tokens, output);
    return { output, routerLogits: logits, selected: routing.selected };
  }

  /** Times every candidate tiling on this forward's work (twice each, the second kept) and caches the fastest. */
  private async tune(key: string, encode: (t: GemmTiling) => GPUCommandEncoder): Promise<GemmTiling> {
    const known = this.tuned.get(key);
    if (known) return known.tiling;
    const timings: Record<string, number> = {};
    let best: GemmTiling | undefined;
    let bestMs = Infinity;
    for (const t of this.candidates()) {
      let ms = Infinity;
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        this.device.queue.submit([encode(t).finish()]);
        await withTimeout(this.device.queue.onSubmittedWorkDone(), READBACK_TIMEOUT_MS, this.session.adapter.backend);
        if (i > 0) ms = Math.min(ms, performance.now() - start);
      }
      timings[JSON.stringify(t)] = ms;
      if (ms < bestMs) {
        bestMs = ms;
        best = t;
      }
    }
    this.tuned.set(key, { tiling: best!, timings });
    return best!;
  }

  /** Groups one rank's routed rows by expert and uploads the tables that do not depend on the tiling. */
  private plan(
    sem: MoeSemantics, layer: number, rank: RankTensors, weights: RankWeights, routing: RoutingResult, x: Float32Array, tokens: number, first: number,
    buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): RankPlan {
    const { hidden: H, topK: k } = sem;
    const p = `layers.${layer}.`;
    const n = weights.ids.length;
    const R = weights.w2.cols;
    const grouping = groupByExpert(routing, weights.ids, tokens, k);
    const routed = grouping.offsets[n]!;
    const bias = this.biases(layer, rank, weights, R, H, buffer);
    const withShared = weights.shared !== undefined && rank.req.epRank === 0;
    const slots = k + (withShared ? 1 : 0);
    const pos = new Uint32Array(tokens * slots).fill(NONE);
    for (let t = 0; t < tokens; t++) {
      for (let j = 0; j < k; j++) {
        const row = grouping.position[t * k + j]!;
        if (row >= 0) pos[t * slots + j] = row;
      }
      if (withShared) pos[t * slots + k] = routed + t;
    }
    const plan: RankPlan = {
      weights, grouping, slots, pos: buffer(pos),
      rows: buffer(rowTable(grouping.token, grouping.inputScale, grouping.outputScale, first)),
      b13: bias.b13,
      b2: bias.b2,
    };
    if (withShared) {
      // The shared expert: once per TP shard, from EP rank 0 only, scaled by its gate where the model has one.
      const batch = sharedBatch(x, tokens, H, sem.sharedGate ? wholeFloats(rank, `${p}shared.gate`, [1, H]) : undefined, sem.sharedScale);
      const routedShared = routedSharedScale(sem, routing);
      if (routedShared) batch.outputScale.set(routedShared);
      plan.shared = { rows: buffer(rowTable(batch.tokens, batch.inputScale, batch.outputScale, first)), R: weights.shared!.w2.cols };
    }
    return plan;
  }

  private encodeRank(
    pass: GPUComputePassEncoder, sem: MoeSemantics, plan: RankPlan, tiling: GemmTiling, xBuf: GPUBuffer, tokens: number, part: number, first: number, r: number, zeros: GPUBuffer,
    buffer: (d: ArrayBufferView | number, usage?: number) => GPUBuffer,
  ): void {
    const H = sem.hidden;
    const { w13, w2, shared } = plan.weights;
    const R = w2.cols;
    const { mode, alpha, limit } = activationParams(sem.activation);
    const g = plan.grouping;
    const routed = g.offsets[g.offsets.length - 1]!;
    // Sized for the largest part, so that no part's scratch is reallocated under an earlier one's work.
    const actBuf = this.scratchBuffer(`act${r}`, part * sem.topK * R * 4);
    const yBuf = this.scratchBuffer(`y${r}`, part * (sem.topK + 1) * H * 4);
    if (routed > 0) {
      const up: GemmParams = { N: R, K: H, rowsB: 2 * R, upRow: R, ldc: R, cOff: 0, hasBias: plan.b13 !== undefined, mode, alpha, limit };
      const down: GemmParams = { N: H, K: R, rowsB: H, upRow: 0, ldc: H, cOff: 0, hasBias: plan.b2 !== undefined, mode: 0, alpha: 0, limit: 0 };
      this.grouped(pass, 'up', tiling, this.matrices(w13, buffer), g.offsets, up, plan.rows, xBuf, plan.b13 ?? zeros, actBuf, buffer);
      this.grouped(pass, 'down', tiling, this.matrices(w2, buffer), g.offsets, down, plan.rows, actBuf, plan.b2 ?? zeros, yBuf, buffer);
    }
    if (plan.shared && shared) {
      const Rs = plan.shared.R;
      const actS = this.scratchBuffer(`actS${r}`, tokens * Rs * 4);
      const up: GemmParams = { N: Rs, K: H, rowsB: 2 * Rs, upRow: Rs, ldc: Rs, cOff: 0, hasBias: false, ...activationParams(sem.sharedActivation ?? SILU_GATED) };
      const down: GemmParams = { N: H, K: Rs, rowsB: H, upRow: 0, ldc: H, cOff: routed, hasBias: false, mode: 0, alpha: 0, limit: 0 };
      this.grouped(pass, 'up', tiling, this.matrices(shared.w13, buffer), [0, tokens], up, plan.shared.rows, xBuf, zeros, actS, buffer);
      this.grouped(pass, 'down', tiling, this.matrices(shared.w2, buffer), [0, tokens], down, plan.shared.rows, actS, zeros, yBuf, buffer);
    }
    const params = new Uint32Array([tokens, H, plan.slots, r > 0 ? 1 : 0, first, 0, 0, 0]);
    this.dispatch(pass, this.combine, [buffer(params, UNIFORM), plan.pos, yBuf, this.scratch.get('out')!], Math.ceil((tokens * H) / 128));
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
    const pipeline = this.pipeline(mode, tiling, w.dtype, params.K % 4 === 0);
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
      const group = this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [uniform, buffer(Uint32Array.from(tiles)), rows, a, chunk.buffer, bias, c].map((buf, binding) => ({ binding, resource: { buffer: buf } })),
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(count, columnTiles);
    }
  }

  /** One thread per element (128 per workgroup), over as many rows of 65535 workgroups as needed. */
  private dispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, buffers: GPUBuffer[], groups: number): void {
    const group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buf, binding) => ({ binding, resource: { buffer: buf } })),
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
  }

  private createBuffer(size: number, usage: number): GPUBuffer {
    // A mappable buffer may only be a copy destination besides; sizes padded for vec4 views.
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage: usage === MAP_READ ? MAP_READ | COPY_DST : usage | COPY_DST | COPY_SRC });
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

  /** A buffer kept across forwards (only grown), for per-forward intermediates. */
  private scratchBuffer(name: string, size: number): GPUBuffer {
    const have = this.scratch.get(name);
    if (have && have.size >= size) return have;
    have?.destroy();
    const b = this.createBuffer(Math.max(size, 16), STORAGE);
    this.scratch.set(name, b);
    return b;
  }

  /** Writes `bytes` into the kept upload staging buffer and records its copy into `dst` on `encoder`. */
  private async staged(encoder: GPUCommandEncoder, dst: GPUBuffer, bytes: Uint8Array): Promise<void> {
    const size = Math.max(16, Math.ceil(bytes.length / 16) * 16);
    if (!this.upload || this.upload.buffer.size < size) {
      this.upload?.buffer.destroy();
      this.upload = { buffer: this.device.createBuffer({ size, usage: MAP_WRITE | COPY_SRC, mappedAtCreation: true }), ready: Promise.resolve() };
    }
    const up = this.upload;
    await withTimeout(up.ready, READBACK_TIMEOUT_MS, this.session.adapter.backend);
    new Uint8Array(up.buffer.getMappedRange(0, size)).set(bytes);
    up.buffer.unmap();
    encoder.copyBufferToBuffer(up.buffer, 0, dst, 0, size);
    this.remapUpload = true;
  }

  private remapUpload = false;

  /** Submits `encoder` after a copy of `src` into the kept readback buffer `name`, and reads `count` floats back. */
  private async read(encoder: GPUCommandEncoder, src: GPUBuffer, count: number, name: string): Promise<Float32Array> {
    return this.submitRead(encoder, src, 0, count, name);
  }

  /**
   * Submits `encoder` (now) after a copy of `count` floats of `src` from float `at` into the
   * kept readback buffer `name`; the promise resolves to those floats.
   */
  private submitRead(encoder: GPUCommandEncoder, src: GPUBuffer, at: number, count: number, name: string): Promise<Float32Array> {
    const size = Math.max(16, Math.ceil((count * 4) / 16) * 16);
    let staging = this.readbacks.get(name);
    if (!staging || staging.size < size) {
      staging?.destroy();
      staging = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
      this.readbacks.set(name, staging);
    }
    encoder.copyBufferToBuffer(src, at * 4, staging, 0, Math.min(size, src.size - at * 4));
    this.device.queue.submit([encoder.finish()]);
    if (this.remapUpload && this.upload) {
      // Mapped again once this submission's copy out of it is done: ready for the next upload.
      const up = this.upload;
      up.ready = up.buffer.mapAsync(MAP_WRITE);
      up.ready.catch(() => undefined);
      this.remapUpload = false;
    }
    const mapped = staging;
    return withTimeout(mapped.mapAsync(MAP_READ, 0, size), READBACK_TIMEOUT_MS, this.session.adapter.backend).then(
      () => {
        const out = new Float32Array(mapped.getMappedRange(0, size).slice(0, count * 4));
        mapped.unmap();
        return out;
      },
      (e: Error) => {
        throw new WgslKernelError(`readback failed: ${e.message}`, { expected: 'mapped result', found: 'no mapping' });
      },
    );
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

  /** The stacked matrices of `w` on the device: resident, or uploaded into temporary buffers. */
  private matrices(w: StackedMatrices, buffer: (d: ArrayBufferView | number) => GPUBuffer): DeviceMatrices {
    return this.resident.get(w.tensor) ?? this.toDevice(w, (size) => buffer(size));
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
    for (const b of this.readbacks.values()) b.destroy();
    this.upload?.buffer.destroy();
    await this.session.dispose();
  }
}

/** `[4M]` u32 (one vec4 a row): row of A, then the bits of its input and output scales. */
function rowTable(tokens: Int32Array, inputScale: Float32Array, outputScale: Float32Array, first = 0): Uint32Array {
  const table = new Uint32Array(4 * tokens.length);
  const inBits = new Uint32Array(inputScale.buffer, inputScale.byteOffset, inputScale.length);
  const outBits = new Uint32Array(outputScale.buffer, outputScale.byteOffset, outputScale.length);
  for (let i = 0; i < tokens.length; i++) {
    table[4 * i] = first + tokens[i]!;
    table[4 * i + 1] = inBits[i]!;
    table[4 * i + 2] = outBits[i]!;
  }
  return table;
}

/** The epilogue's activation parameters (shaders.ts GemmParams.mode). */
function activationParams(a: ExpertActivation): { mode: number; alpha: number; limit: number } {
  if (a.kind === 'gpt_oss_clamped') return { mode: 1, alpha: a.alpha, limit: a.limit };
  if (a.kind === 'silu_clamped') return { mode: 3, alpha: 0, limit: a.limit };
  if (a.kind === 'silu_clamped_after') return { mode: 4, alpha: 0, limit: a.limit };
  if (a.kind === 'gelu_tanh_gated') return { mode: 5, alpha: 0, limit: 0 };
  if (a.kind === 'silu') return { mode: 6, alpha: 0, limit: 0 };
  return { mode: a.kind === 'relu2' ? 2 : 0, alpha: 0, limit: 0 };
}
