// moe-conformance generate: a random checkpoint of a model type in a layout, loadable by
// the reference loader (and laid out as transformers writes it). Deterministic from --seed.
import { commandFailure, UsageError } from '../args.js';
import { canonicalSpecs } from '../../../harness/quant/canonical.js';
import { WHOLE } from '../../../harness/tensor.js';
import { choice, int, one, startCommand, type CommandDef } from '../options.js';
import { ModelConfig } from '../../../harness/checkpoint/config.js';
import { LAYOUT_NAMES, MODEL_TYPES } from '../../../harness/layouts/registry.js';
import { buildConfig, type ConfigDtype } from '../../../harness/writer/config.js';
import { randomCanonical } from '../../../harness/canonical/random.js';
import { moeLayoutsOf } from '../../../harness/quant/layout.js';
import { randomQuantizedCanonical } from '../../../harness/quant/random.js';
import { quantizationConfig, type QuantScheme } from '../../../harness/quant/scheme.js';
import { formatOf, QUANT_DTYPES } from '../../../harness/quant/formats/index.js';
import { writeMoeCheckpoint } from '../../../harness/writer/write-checkpoint.js';
import type { DType } from '../../../harness/safetensors/dtypes.js';

/**
 * The most weights `generate` makes: it draws every canonical tensor in memory (float64)
 * before writing, so a checkpoint past this (2 GiB of draws) is refused before anything is
 * drawn. bench/big-checkpoint.ts streams the multi-gigabyte benchmark checkpoints instead.
 */
export const MAX_GENERATED_WEIGHTS = 2 ** 28;

const DTYPES: Record<string, { dtype: DType; config: ConfigDtype; quant?: QuantScheme }> = {
  f32: { dtype: 'F32', config: 'float32' },
  bf16: { dtype: 'BF16', config: 'bfloat16' },
  f16: { dtype: 'F16', config: 'float16' },
  // Quantized routed experts (spec §4), BF16 elsewhere: each quantized dtype's scheme (FP8 with 128x128 blocks, MXFP4, NVFP4, static FP8 variants).
  ...Object.fromEntries(Object.entries(QUANT_DTYPES).map(([name, quant]) => [name, { dtype: 'BF16' as const, config: 'bfloat16' as const, quant }])),
};

/** What the stored weights are, as `inspect` would name them: the routed experts' dtype, and the rest's when it differs. */
function describeDtype(name: string): string {
  const d = DTYPES[name]!;
  return d.quant ? `routed experts ${formatOf(d.quant).stored(d.quant)}, ${d.dtype} elsewhere` : d.dtype;
}

const DEF: CommandDef = {
  name: 'generate',
  synopsis: ['--model-type T --experts E --hidden H --intermediate I --layers N --out DIR [options]'],
  description: `Writes a random checkpoint of a model type in a layout, loadable by the reference loader and
laid out as transformers writes it; deterministic from --seed.

model types: ${MODEL_TYPES.join(', ')}`,
  options: {
    'model-type': { args: ['T'], help: 'the model type (see the list above)', required: true },
    layout: { args: ['L'], help: `the layout: ${LAYOUT_NAMES.join(' or ')}`, default: 'original' },
    dtype: { args: ['D'], help: `weights: ${Object.keys(DTYPES).join(', ')} (the quantized ones quantize the routed experts and keep BF16 elsewhere)`, default: 'f32' },
    experts: { args: ['E'], help: 'routed experts per MoE layer', required: true },
    hidden: { args: ['H'], help: 'hidden size', required: true },
    intermediate: { args: ['I'], help: 'expert intermediate size', required: true },
    layers: { args: ['N'], help: 'decoder layers', required: true },
    out: { args: ['DIR'], help: 'the folder to write (created)', required: true },
    'shared-intermediate': { args: ['Is'], help: 'shared-expert intermediate size, for types that have one (0: none)', default: '0' },
    'top-k': { args: ['K'], help: 'experts per token (at most E)', default: '2' },
    seed: { args: ['S'], help: 'seed of the weights', default: '0' },
    'max-shard-bytes': { args: ['B'], help: 'split into shards of at most B bytes (0: one file)', default: '0' },
  },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  const modelType = choice(p, 'model-type', MODEL_TYPES, MODEL_TYPES[0]!);
  const layout = choice(p, 'layout', LAYOUT_NAMES, 'original');
  const dtypeName = choice(p, 'dtype', Object.keys(DTYPES), 'f32');
  const dtype = DTYPES[dtypeName]!;
  const out = one(p, 'out');
  const sizes = {
    modelType,
    experts: int(p, 'experts', 1, 1),
    hidden: int(p, 'hidden', 1, 1),
    intermediate: int(p, 'intermediate', 1, 1),
    layers: int(p, 'layers', 1, 1),
    sharedIntermediate: int(p, 'shared-intermediate', 0),
    topK: int(p, 'top-k', 2, 1),
  };
  const seed = int(p, 'seed', 0);
  const maxShardBytes = int(p, 'max-shard-bytes', 0);
  // The default top-k (2) follows a single expert down; one asked for above the experts is refused, not clamped.
  if (sizes.topK > sizes.experts) {
    if (p.values.has('top-k')) p.problems.add(`--top-k ${sizes.topK} exceeds --experts ${sizes.experts}`);
    else sizes.topK = sizes.experts;
  }
  p.problems.check();
  try {
    const quant = dtype.quant ? { quantization_config: quantizationConfig(dtype.quant) } : {};
    const config = new ModelConfig(buildConfig(sizes, dtype.config, quant));
    const { dims, scheme } = moeLayoutsOf(config, dtype.quant);
    const weights = dims.moeLayers.reduce((n, l) => n + canonicalSpecs(l, dims, WHOLE).reduce((m, s) => m + s.shape.reduce((a, b) => a * b, 1), 0), 0);
    if (weights > MAX_GENERATED_WEIGHTS) {
      throw new UsageError(`these sizes make ${weights.toExponential(2)} weights, more than generate builds in memory (${MAX_GENERATED_WEIGHTS.toExponential(2)}): use smaller --experts, --hidden, --intermediate or --layers`);
    }
    const canonical = scheme ? randomQuantizedCanonical(dims, scheme, seed) : randomCanonical(dims, dtype.dtype, seed);
    await writeMoeCheckpoint(out!, {
      config,
      layout,
      canonical,
      ...(scheme ? { scheme } : {}),
      ...(maxShardBytes > 0 ? { plan: { maxShardBytes } } : {}),
    });
    process.stdout.write(`wrote ${modelType} (${layout}, ${describeDtype(dtypeName)}) to ${out}\n`);
    return 0;
  } catch (e) {
    return commandFailure('generate', e);
  }
}
