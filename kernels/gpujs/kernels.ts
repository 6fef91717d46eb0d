// The MoE building blocks as gpu.js kernels, float32, one compiled kernel per shape.
// The host decides *which* rows to compute (routing, slot lookup); the device does every
// dot product. Rows are "assignments": row a = t*K + c is token t's c-th selected expert,
// with its own input row (x[t], or x[t]·s where routing scales the input) and slot -1 when
// that expert is not among the weights passed (another EP rank or chunk): it yields zeros.
//
// Two gpu.js traps are handled here once for all callers:
// - loops over H or I are bounded by `this.constants` (gpu.js runs such loops to their
//   bound) and loopMaxIterations is raised past them as well: gpu.js silently stops any
//   other loop at 1000 iterations;
// - weights are indexed as 3-D inputs (w[slot][row][col]), never as flat arrays with a
//   computed offset: webasm and webgpu do that arithmetic in f32 and read the wrong
//   element past 2^24 (seen with a [3, 5000, 1201] tensor).
import { GPU, Input, type IKernelFunctionThis, type IKernelRunShortcut, type KernelOutput } from 'gpu.js';
import { BackendFallbackError } from './errors.js';

export type GpujsMode = 'cpu' | 'webasm' | 'webgpu';

/** Expert activation as a kernel constant: 0 = SiLU-gated, 1 = gpt_oss clamped, 2 = relu² of up (non-gated), 3 = SiLU-gated clamped at limit, 4 = clamped after SiLU, 5 = GeGLU (tanh GELU), 6 = SiLU of up (non-gated, doge). */
export interface ActivationConstants {
  act: 0 | 1 | 2 | 3 | 4 | 5 | 6;
  alpha: number;
  limit: number;
}

export const SILU_GATED: ActivationConstants = { act: 0, alpha: 0, limit: 0 };

type Row = number[];
type Matrix = number[][];
type Stack = number[][][];

// Kernel bodies. gpu.js transpiles their source text; keep them to its subset (no
// closures, no ternaries, numbers only).

function linearBody(this: IKernelFunctionThis<{ H: number }>, x: Matrix, w: Matrix, b: Row): number {
  let sum = 0;
  for (let h = 0; h < this.constants.H; h++) {
    sum += x[this.thread.y]![h]! * w[this.thread.x]![h]!;
  }
  return sum + b[this.thread.x]!;
}

function gatedUpBody(
  this: IKernelFunctionThis<{ H: number; R: number; act: number; alpha: number; limit: number }>,
  rowInput: Matrix,
  rowSlot: Row,
  w13: Stack,
  b13: Matrix,
): number {
  const slot = rowSlot[this.thread.y]!;
  if (slot < 0) {
    return 0;
  }
  const i = this.thread.x;
  let gate = 0;
  let up = 0;
  for (let h = 0; h < this.constants.H; h++) {
    const xv = rowInput[this.thread.y]![h]!;
    gate += xv * w13[slot]![i]![h]!;
    up += xv * w13[slot]![i + this.constants.R]![h]!;
  }
  gate += b13[slot]![i]!;
  up += b13[slot]![i + this.constants.R]!;
  if (this.constants.act === 2) {
    const r = Math.max(up, 0);
    return r * r;
  }
  if (this.constants.act === 5) {
    // tanh from exp(-2|y|), which never overflows.
    const y = 0.7978845608028654 * (gate + 0.044715 * gate * gate * gate);
    const ey = Math.exp(-2 * Math.abs(y));
    let th = (1 - ey) / (1 + ey);
    if (y < 0) {
      th = -th;
    }
    return 0.5 * gate * (1 + th) * up;
  }
  let g = gate;
  let u = up;
  let z = gate;
  if (this.constants.act === 3) {
    g = Math.min(gate, this.constants.limit);
    u = Math.max(Math.min(up, this.constants.limit), -this.constants.limit);
    z = g;
  }
  if (this.constants.act === 6) {
    g = up;
    u = 1;
    z = up;
  }
  if (this.constants.act === 1) {
    g = Math.min(gate, this.constants.limit);
    u = Math.max(Math.min(up, this.constants.limit), -this.constants.limit) + 1;
    z = this.constants.alpha * g;
  }
  // σ(z) from exp(-|z|), which never overflows (WGSL leaves an overflowing exp undefined).
  const e = Math.exp(-Math.abs(z));
  let sigma = 1 / (1 + e);
  if (z < 0) {
    sigma = e / (1 + e);
  }
  if (this.constants.act === 4) {
    return Math.min(g * sigma, this.constants.limit) * Math.max(Math.min(up, this.constants.limit), -this.constants.limit);
  }
  return g * sigma * u;
}

function downBody(this: IKernelFunctionThis<{ R: number }>, act: Matrix, rowSlot: Row, w2: Stack): number {
  const slot = rowSlot[this.thread.y]!;
  if (slot < 0) {
    return 0;
  }
  let sum = 0;
  for (let i = 0; i < this.constants.R; i++) {
    sum += act[this.thread.y]![i]! * w2[slot]![this.thread.x]![i]!;
  }
  return sum;
}

function combineBody(
  this: IKernelFunctionThis<{ K: number }>,
  y: Matrix,
  rowWeight: Row,
  rowSlot: Row,
  b2: Matrix,
  biasOn: number,
): number {
  let sum = 0;
  for (let c = 0; c < this.constants.K; c++) {
    const a = this.thread.y * this.constants.K + c;
    const slot = rowSlot[a]!;
    if (slot >= 0) {
      sum += rowWeight[a]! * (y[a]![this.thread.x]! + biasOn * b2[slot]![this.thread.x]!);
    }
  }
  return sum;
}

type KernelArgument = Float32Array | Int32Array | Input | number;
type GpujsKernel = IKernelRunShortcut;

/** The mode gpu.js actually used for this kernel's last run (it may differ from the one asked). */
export function ranOn(kernel: GpujsKernel): string {
  return String((kernel.kernel.constructor as unknown as { mode: string }).mode);
}

/** Throws BackendFallbackError when gpu.js ran `kernel` on another mode than `expected`. */
export function assertRanOn(kernel: GpujsKernel, expected: GpujsMode, what: string): void {
  const found = ranOn(kernel);
  if (found !== expected) {
    const reason = kernel.kernel.fallbackReason;
    throw new BackendFallbackError(`gpu.js ran kernel ${what} on another backend${reason ? ` (${reason})` : ''}`, {
      expected,
      found,
    });
  }
}

/** A flat row-major array seen by a kernel as `dims` (innermost first, gpu.js order). */
function shaped(values: Float32Array, dims: [number, number] | [number, number, number]): Input {
  return new Input(values as unknown as number[], dims);
}

/** gpu.js returns 2-D outputs as one Float32Array per row; the callers want them flat. */
function flatten(result: KernelOutput, rows: number, cols: number): Float32Array {
  if (result instanceof Float32Array && result.length === rows * cols) return result;
  const out = new Float32Array(rows * cols);
  const list = result as unknown as ArrayLike<ArrayLike<number>>;
  for (let r = 0; r < rows; r++) out.set(list[r]!, r * cols);
  return out;
}

/**
 * Sizes and switches are integers; alpha and limit are real numbers even when they hold
 * integral values (gpt_oss limit 7), which gpu.js would otherwise type as integers.
 */
function constantTypes(constants: object): Record<string, 'Integer' | 'Float'> {
  return Object.fromEntries(Object.keys(constants).map((name) => [name, name === 'alpha' || name === 'limit' ? 'Float' : 'Integer']));
}

/** Compiled kernels are cached by shape; this bound keeps a long property run from hoarding them. */
const CACHE_LIMIT = 48;

export class GpujsKernels {
  private readonly gpu: GPU;
  private readonly cache = new Map<string, GpujsKernel>();

  constructor(readonly mode: GpujsMode) {
    this.gpu = new GPU({ mode });
  }

  /** `[rows, n]`: out[r][e] = Σ_h x[r][h]·w[e][h] + b[e] (router logits, shared-expert gate). */
  linear(x: Float32Array, rows: number, hidden: number, w: Float32Array, n: number, b: Float32Array): Promise<Float32Array> {
    const kernel = this.kernel(`linear:${rows}:${hidden}:${n}`, linearBody, [n, rows], { H: hidden }, hidden);
    return this.run(kernel, 'linear', [shaped(x, [hidden, rows]), shaped(w, [hidden, n]), b], rows, n);
  }

  /**
   * `[A, R]`: the activated intermediate act(gate, up) of each row, where gate/up are rows
   * i and R+i of `w13[slot]` (`[S, 2R, H]`) applied to that row's input (`[A, H]`), plus
   * `b13[slot]` (`[S, 2R]`).
   */
  gatedUp(
    rowInput: Float32Array,
    hidden: number,
    slot: Int32Array,
    w13: Float32Array,
    slots: number,
    r: number,
    b13: Float32Array,
    activation: ActivationConstants,
  ): Promise<Float32Array> {
    const a = slot.length;
    const key = `gatedUp:${a}:${hidden}:${slots}:${r}:${activation.act}:${activation.alpha}:${activation.limit}`;
    const kernel = this.kernel(key, gatedUpBody, [r, a], { H: hidden, R: r, ...activation }, hidden);
    const args = [shaped(rowInput, [hidden, a]), slot, shaped(w13, [hidden, 2 * r, slots]), shaped(b13, [2 * r, slots])];
    return this.run(kernel, 'gatedUp', args, a, r);
  }

  /** `[A, H]`: out[a][j] = Σ_i act[a][i]·w2[slot(a)][j][i], with `w2` `[S, H, R]`. */
  down(act: Float32Array, slot: Int32Array, w2: Float32Array, slots: number, hidden: number, r: number): Promise<Float32Array> {
    const a = slot.length;
    const kernel = this.kernel(`down:${a}:${slots}:${hidden}:${r}`, downBody, [hidden, a], { R: r }, r);
    return this.run(kernel, 'down', [shaped(act, [r, a]), slot, shaped(w2, [r, hidden, slots])], a, hidden);
  }

  /**
   * `[T, H]`: out[t][j] = Σ_c weight[a]·(y[a][j] + biasOn·b2[slot(a)][j]) over the rows
   * a = t*K + c that live here; `b2` is `[S, H]`.
   */
  combine(y: Float32Array, weight: Float32Array, slot: Int32Array, k: number, hidden: number, b2: Float32Array, slots: number, biasOn: 0 | 1): Promise<Float32Array> {
    const a = slot.length;
    const tokens = a / k;
    const kernel = this.kernel(`combine:${a}:${k}:${hidden}:${slots}`, combineBody, [hidden, tokens], { K: k }, k);
    return this.run(kernel, 'combine', [shaped(y, [hidden, a]), weight, slot, shaped(b2, [hidden, slots]), biasOn], tokens, hidden);
  }

  async destroy(): Promise<void> {
    this.cache.clear();
    await this.gpu.destroy();
  }

  private kernel(key: string, body: unknown, output: [number, number], constants: object, longestLoop: number): GpujsKernel {
    const cached = this.cache.get(key);
    if (cached) {
      // Refresh its place in the eviction order.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const kernel = this.gpu
      .createKernel(body as (this: IKernelFunctionThis) => number, {
        output,
        constants,
        constantTypes: constantTypes(constants),
        precision: 'single',
        tactic: 'precision',
        // webasm then splits kernels of ≥ 4096 cells over a worker pool, one per core
        // (same results whatever the split); webgpu is asynchronous anyway, cpu unaffected.
        asyncMode: true,
      })
      .setLoopMaxIterations(longestLoop + 1);
    this.cache.set(key, kernel);
    if (this.cache.size > CACHE_LIMIT) {
      const [oldestKey, oldest] = this.cache.entries().next().value as [string, GpujsKernel];
      this.cache.delete(oldestKey);
      oldest.destroy();
    }
    return kernel;
  }

  private async run(kernel: GpujsKernel, what: string, args: KernelArgument[], rows: number, cols: number): Promise<Float32Array> {
    const result = await (kernel as unknown as (...a: KernelArgument[]) => KernelOutput | Promise<KernelOutput>)(...args);
    assertRanOn(kernel, this.mode, what);
    return flatten(result, rows, cols);
  }
}
