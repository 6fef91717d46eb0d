/// <reference types="@webgpu/types" />
// The MoE forward as hand-written WGSL (`wgsl-webgpu`) on the WebGPU device that
// kernels/gpujs/device.ts acquires through Dawn (one device per process, shared with
// gpu.js). Two round trips per forward: router logits (selection runs on the CPU with the
// shared routing code), then every expert of every rank — gather-GEMM, activation, GEMM,
// weighted scatter-add — encoded in one compute pass and read back once. Same rank-summing
// semantics and expert grouping as the CPU fast path (kernels/fast/canonical.ts).
import { createRequire } from 'node:module';
import { SILU_GATED, type ExpertActivation, type MoeSemantics } from '../../harness/layouts/semantics.js';
import { kernelForm } from '../kernel-form.js';
import { addZeroExperts } from '../routing.js';
import type { MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { MoeConformanceError } from '../../harness/errors.js';
import { openWebGpu, withTimeout, type AdapterDescription, type WebGpuOptions, type WebGpuSession } from '../gpujs/device.js';
import {
  expertBatches, expertBiases, matrixBytesF32, rankWeights, routeLogits, sharedBatch, wholeFloats, type ExpertBatch, type RankWeights, type StackedMatrices,
} from '../fast/canonical.js';
import { tensorOf } from '../experts.js';
import { checkForwardInput } from '../moe.js';
import { ACTIVATE_SHADER, COMPAT_TILING, DEFAULT_TILING, gemmShader, SCATTER_SHADER, tileCols, tileRows, type GemmTiling } from './shaders.js';

/** The device rejected a buffer, pipeline or dispatch, or a readback did not come back. */
export class WgslKernelError extends MoeConformanceError {}

// GPUBufferUsage / GPUMapMode values (WebGPU spec), as Node has no such globals.
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;
const READBACK_TIMEOUT_MS = 120_000;

export interface WgslOptions extends WebGpuOptions {
  tiling?: GemmTiling;
  /** Keep the last forward's weights on the device across forwards (same contract as the CPU path's). */
  residentWeights?: boolean;
}

interface Pipelines {
  gemm: GPUComputePipeline;
  activate: GPUComputePipeline;
  scatter: GPUComputePipeline;
}

const require = createRequire(import.meta.url);

export class WgslWebGpuBackend implements MoeBackend {
  readonly name = 'wgsl-webgpu';
  private readonly resident = new Map<object, GPUBuffer[]>();
  private disposed = false;

  private constructor(
    private readonly session: WebGpuSession,
    private readonly device: GPUDevice,
    private readonly pipelines: Pipelines,
    readonly tiling: GemmTiling,
    private readonly keepResident: boolean,
  ) {}

  get adapter(): AdapterDescription {
    return this.session.adapter;
  }

  describe(): string {
    const a = this.session.adapter;
    return `hand-written WGSL, WebGPU adapter via Dawn ${a.backend}: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`;
  }

  /** Opens (or joins) the process's WebGPU session and compiles the kernels. */
  static async create(options: WgslOptions = {}): Promise<WgslWebGpuBackend> {
    const session = await openWebGpu(options);
    try {
      const { device } = (await (require('gpu.js') as { WebGPUContext: { acquire(): Promise<{ device: GPUDevice }> } }).WebGPUContext.acquire());
      const fitsDefault = device.limits.maxComputeInvocationsPerWorkgroup >= DEFAULT_TILING.wx * DEFAULT_TILING.wy;
      const tiling = options.tiling ?? (fitsDefault ? DEFAULT_TILING : COMPAT_TILING);
      device.pushErrorScope('validation');
      const make = (code: string): GPUComputePipeline =>
        device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
      const pipelines = { gemm: make(gemmShader(tiling)), activate: make(ACTIVATE_SHADER), scatter: make(SCATTER_SHADER) };
      const error = await device.popErrorScope();
      if (error) throw new WgslKernelError(`WGSL kernels rejected by the device: ${error.message}`, { expected: 'valid pipelines', found: error.message });
      return new WgslWebGpuBackend(session, device, pipelines, tiling, options.residentWeights ?? false);
    } catch (e) {
      await session.dispose();
      throw e;
    }
  }

  async forward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number): Promise<MoeForwardResult> {
    if (this.disposed) throw new WgslKernelError('wgsl-webgpu backend used after dispose');
    checkForwardInput(sem, layer, ranks, x, tokens);
    ranks = kernelForm(sem, ranks);
    const weights = ranks.map((rank) => rankWeights(sem, layer, rank));
    if (tokens === 0) return { output: new Float32Array(0), routerLogits: new Float32Array(0), selected: new Int32Array(0) };
    const temp: GPUBuffer[] = [];
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    try {
      return await this.forwardOn(sem, layer, ranks, weights, x, tokens, temp);
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
    sem: MoeSemantics, layer: number, ranks: RankTensors[], weights: RankWeights[], x: Float32Array, tokens: number, temp: GPUBuffer[],
  ): Promise<MoeForwardResult> {
    const { hidden: H, experts: E, topK: k } = sem;
    const p = `layers.${layer}.`;
    const buffer = (data: ArrayBufferView | number, usage = STORAGE): GPUBuffer => {
      const size = typeof data === 'number' ? data : data.byteLength;
      // A mappable buffer may only be a copy destination besides.
      const b = this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage: usage === MAP_READ ? MAP_READ | COPY_DST : usage | COPY_DST | COPY_SRC });
      if (typeof data !== 'number') this.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      temp.push(b);
      return b;
    };
    if (this.keepResident) this.hold(weights);
    const xBuf = buffer(x);

    // Round trip 1: router logits.
    const r0 = ranks[0]!;
    const router: StackedMatrices = { tensor: tensorOf(r0, `${p}router.weight`, [E, H]), name: `${p}router.weight`, count: 1, rows: E, cols: H };
    const logitsBuf = buffer(tokens * E * 4);
    const all = sharedBatch(x, tokens, H, undefined);
    let encoder = this.device.createCommandEncoder();
    let pass = encoder.beginComputePass();
    this.gemm(pass, buffer(rowTable(all.tokens, all.inputScale)), xBuf, this.matrix(router, 0, buffer), logitsBuf, tokens, E, H, buffer);
    pass.end();
    const logits = await this.read(encoder, logitsBuf, tokens * E, buffer);
    const routing = routeLogits(sem, layer, r0, logits, tokens);

    // Round trip 2: every expert of every rank, scattered into one output.
    const widest = Math.max(...weights.map((w) => Math.max(w.w2.cols, w.shared?.w2.cols ?? 0)), 1);
    const hBuf = buffer(tokens * 2 * widest * 4);
    const actBuf = buffer(tokens * widest * 4);
    const yBuf = buffer(tokens * H * 4);
    const outBuf = buffer(tokens * H * 4);
    const zeros = buffer(Math.max(H, 2 * widest) * 4);
    encoder = this.device.createCommandEncoder();
    pass = encoder.beginComputePass();
    const run = (batch: ExpertBatch, w13: GPUBuffer, w2: GPUBuffer, R: number, a: ExpertActivation, b13: GPUBuffer, b2: GPUBuffer) => {
      const M = batch.tokens.length;
      this.gemm(pass, buffer(rowTable(batch.tokens, batch.inputScale)), xBuf, w13, hBuf, M, 2 * R, H, buffer);
      const [mode, alpha, limit] = a.kind === 'gpt_oss_clamped' ? [1, a.alpha, a.limit] : [a.kind === 'relu2' ? 2 : 0, 0, 0];
      this.elementwise(pass, this.pipelines.activate, [hBuf, b13, actBuf], [M, R, mode], [alpha, limit], M * R, buffer);
      this.gemm(pass, buffer(rowTable(Int32Array.from({ length: M }, (_, i) => i), new Float32Array(M).fill(1))), actBuf, w2, yBuf, M, H, R, buffer);
      this.elementwise(pass, this.pipelines.scatter, [buffer(rowTable(batch.tokens, batch.outputScale)), yBuf, b2, outBuf], [M, H], [], M * H, buffer);
    };
    ranks.forEach((rank, r) => {
      const { ids, w13, w2, shared } = weights[r]!;
      const n = ids.length;
      const R = w2.cols;
      const bias = expertBiases(layer, rank, n, R, H);
      for (const batch of expertBatches(routing, ids, tokens, k)) {
        const s = batch.slot;
        const b13 = bias.w13 ? buffer(bias.w13.subarray(s * 2 * R, (s + 1) * 2 * R)) : zeros;
        const b2 = bias.w2 ? buffer(bias.w2.subarray(s * H, (s + 1) * H)) : zeros;
        run(batch, this.matrix(w13, s, buffer), this.matrix(w2, s, buffer), R, sem.activation, b13, b2);
      }
      // The shared expert: once per TP shard, from EP rank 0 only.
      if (shared && rank.req.epRank === 0) {
        const batch = sharedBatch(x, tokens, H, sem.sharedGate ? wholeFloats(rank, `${p}shared.gate`, [1, H]) : undefined, sem.sharedScale);
        run(batch, this.matrix(shared.w13, 0, buffer), this.matrix(shared.w2, 0, buffer), shared.w2.cols, sem.sharedActivation ?? SILU_GATED, zeros, zeros);
      }
    });
    pass.end();
    const output = await this.read(encoder, outBuf, tokens * H, buffer);
    addZeroExperts(sem, routing, x, tokens, output);
    return { output, routerLogits: logits, selected: routing.selected };
  }

  /** C[M, N] = rows-gathered A · B^T, with K columns in both (row-major, no padding). */
  private gemm(
    pass: GPUComputePassEncoder, rows: GPUBuffer, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, M: number, N: number, K: number,
    buffer: (d: ArrayBufferView, usage?: number) => GPUBuffer,
  ): void {
    const params = buffer(Uint32Array.from([M, N, K, K, K, N, 0, 0]), UNIFORM);
    const group = this.device.createBindGroup({
      layout: this.pipelines.gemm.getBindGroupLayout(0),
      entries: [params, rows, a, b, c].map((buf, binding) => ({ binding, resource: { buffer: buf } })),
    });
    pass.setPipeline(this.pipelines.gemm);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(N / tileCols(this.tiling)), Math.ceil(M / tileRows(this.tiling)));
  }

  /** One thread per element (128 per workgroup), over as many rows of 65535 workgroups as `count` needs. */
  private elementwise(
    pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, storage: GPUBuffer[], words: number[], floats: number[], count: number,
    buffer: (d: ArrayBufferView, usage?: number) => GPUBuffer,
  ): void {
    const uniform = new ArrayBuffer(32);
    new Uint32Array(uniform, 0, words.length).set(words);
    new Float32Array(uniform, 4 * words.length, floats.length).set(floats);
    const group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [buffer(new Uint8Array(uniform), UNIFORM), ...storage].map((buf, binding) => ({ binding, resource: { buffer: buf } })),
    });
    const groups = Math.ceil(count / 128);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
  }

  /** Submits `encoder` after a copy of `src` into a mappable buffer, and reads `count` floats back. */
  private async read(encoder: GPUCommandEncoder, src: GPUBuffer, count: number, buffer: (d: number, usage?: number) => GPUBuffer): Promise<Float32Array> {
    const staging = buffer(count * 4, MAP_READ);
    encoder.copyBufferToBuffer(src, 0, staging, 0, Math.max(16, Math.ceil((count * 4) / 4) * 4));
    this.device.queue.submit([encoder.finish()]);
    try {
      await withTimeout(staging.mapAsync(MAP_READ), READBACK_TIMEOUT_MS, this.session.adapter.backend);
    } catch (e) {
      throw new WgslKernelError(`readback failed: ${(e as Error).message}`, { expected: 'mapped result', found: 'no mapping' });
    }
    const out = new Float32Array(staging.getMappedRange().slice(0, count * 4));
    staging.unmap();
    return out;
  }

  /** Matrix `index` of `w` on the device: resident, or uploaded into a temporary buffer. */
  private matrix(w: StackedMatrices, index: number, buffer: (d: ArrayBufferView) => GPUBuffer): GPUBuffer {
    return this.resident.get(w.tensor)?.[index] ?? buffer(matrixBytesF32(w, index));
  }

  /** Makes every expert matrix of these ranks resident, replacing what was, unless it is the same tensors. */
  private hold(weights: RankWeights[]): void {
    const all = weights.flatMap((w) => (w.shared ? [w.w13, w.w2, w.shared.w13, w.shared.w2] : [w.w13, w.w2]));
    if (all.every((w) => this.resident.has(w.tensor))) return;
    this.releaseResident();
    for (const w of all) {
      this.resident.set(w.tensor, Array.from({ length: w.count }, (_, i) => {
        const bytes = matrixBytesF32(w, i);
        const b = this.device.createBuffer({ size: Math.max(16, bytes.byteLength), usage: STORAGE | COPY_DST });
        this.device.queue.writeBuffer(b, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
        return b;
      }));
    }
  }

  private releaseResident(): void {
    for (const list of this.resident.values()) for (const b of list) b.destroy();
    this.resident.clear();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseResident();
    await this.session.dispose();
  }
}

/** `[2M]` u32: token index, then the bits of its f32 scale, per row. */
function rowTable(tokens: Int32Array, scale: Float32Array): Uint32Array {
  const table = new Uint32Array(2 * tokens.length);
  const bits = new Uint32Array(scale.buffer, scale.byteOffset, scale.length);
  for (let i = 0; i < tokens.length; i++) {
    table[2 * i] = tokens[i]!;
    table[2 * i + 1] = bits[i]!;
  }
  return table;
}
