// A quantized expert format as one plug-in (spec/layouts.md §4, loader-protocol §4): the data
// and the few functions every part of the harness reads from, so that the loader, the
// writer, the kernels and the generators never special-case a format. Each format is one
// module under ./formats/, listed in ./formats/index.ts.
import type { QuantGeometry } from '../layouts/ops.js';
import type { ModuleLayout } from '../layouts/registry.js';
import type { Tensor } from '../tensor.js';

/**
 * A canonical companion of a quantized weight `W` (`layers.L.experts.w13`, `.w2`), named
 * `W_<companion>`: the block/channel/tensor scales, NVFP4's second-level scale, static
 * activation scales, integer zero points and a stored weight's recorded `[out, in]`.
 */
export type Companion = 'scale' | 'scale_2' | 'input_scale' | 'zero' | 'shape' | 'g_idx';

/** Longest suffix first, so `w13_scale_2` is not read as a `_scale` of `w13_scale`... */
const COMPANION_SUFFIXES: readonly Companion[] = ['input_scale', 'scale_2', 'scale', 'zero', 'shape', 'g_idx'];

/** Weights that may be quantized (the routed experts', stacked over `lead` expert axes, and the shared experts'), and the axis TP cuts. */
export const QUANTIZED_WEIGHTS = [
  { suffix: '.experts.w13', cut: 'rows', parts: 2, lead: 1 },
  { suffix: '.experts.w2', cut: 'cols', parts: 1, lead: 1 },
  { suffix: '.shared.w13', cut: 'rows', parts: 2, lead: 0 },
  { suffix: '.shared.w2', cut: 'cols', parts: 1, lead: 0 },
] as const;

export const companionName = (weight: string, c: Companion) => `${weight}_${c}`;

/** `layers.L.experts.w13_scale_2` -> weight `layers.L.experts.w13`, companion `scale_2`; undefined for other names. */
export function splitCompanion(name: string): { weight: string; companion: Companion } | undefined {
  for (const c of COMPANION_SUFFIXES) {
    const tail = `_${c}`;
    if (!name.endsWith(tail)) continue;
    const weight = name.slice(0, -tail.length);
    if (QUANTIZED_WEIGHTS.some((q) => weight.endsWith(q.suffix))) return { weight, companion: c };
  }
  return undefined;
}

export type Companions = Partial<Record<Companion, Tensor>>;

/** Where a canonical weight sits: its name, how many stacked projections its rows hold, and its first row (w13) or column (w2) in the whole projection. */
export interface WeightPlace {
  name: string;
  parts: 1 | 2;
  cut: 'rows' | 'cols';
  /** Global index of the rank's first row (w13, per half) or column (w2) along I. */
  start: number;
}

export interface QuantFormat<S extends QuantGeometry = QuantGeometry> {
  /** The format's id (`QuantGeometry.method`), also `generate --dtype`'s name for it. */
  readonly method: string;
  /** What `generate --help` and the reports say it is. */
  readonly title: string;
  /** What a checkpoint of this scheme stores for the routed experts, as `inspect` names it. */
  stored(s: S): string;
  /** Each quantized weight's canonical companions under this scheme (spec §4). */
  companions(s: S): readonly Companion[];
  /**
   * MXFP4 keeps its canonical bytes as `[..., blocks, 16]` (gpt_oss's storage); other packed
   * formats as `[..., cols / packing]`.
   */
  readonly blockBytes?: number;
  /** The scheme of a `quantization_config`, or undefined where it is another format's; a malformed config of this format throws QuantConfigError. */
  detect(q: Record<string, unknown>, file: string): S | undefined;
  /** The `quantization_config` a generated checkpoint of this scheme declares. */
  config(s: S): Record<string, unknown>;
  /** The default scheme `generate --dtype <method>` writes. */
  readonly defaultScheme: S;
  /**
   * Schemes one config can mean, told apart by the stored shapes (NVFP4's shared global
   * scales), the config's own first: the loader takes the first whose layout the files fit.
   */
  variants?(s: S): readonly S[];
  /** Refuse a model type or sizes this format cannot store (typed errors naming the file). */
  check(modelType: string, dims: { hidden: number; intermediate: number }, s: S, file: string): void;
  /** The stored tensors of one MoE module, from its float layout. */
  layout(float: ModuleLayout, s: S): ModuleLayout;
  /** One canonical weight dequantized to F32 with its companions (spec §4's dequantized form). */
  dequantize(w: Tensor, c: Companions, at: WeightPlace, s: S): Tensor;
  /** A random whole weight `[...lead, parts*rows, cols]` (logical elements) with its companions. */
  random(uniform: () => number, s: S, lead: number[], parts: 1 | 2, rows: number, cols: number, name: string): { weight: Tensor; companions: Companions };
}
