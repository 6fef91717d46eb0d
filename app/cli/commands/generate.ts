// moe-conformance generate: a random checkpoint of a model type in a layout, loadable by
// the reference loader (and laid out as transformers writes it). Deterministic from --seed.
import { commandFailure, intOption, parse, UsageError } from '../args.js';
import { ModelConfig } from '../../../harness/checkpoint/config.js';
import { LAYOUT_NAMES, MODEL_TYPES, type LayoutName } from '../../../harness/layouts/registry.js';
import { buildConfig, type ConfigDtype } from '../../../harness/writer/config.js';
import { randomCanonical } from '../../../harness/canonical/random.js';
import { moeLayoutsOf } from '../../../harness/quant/layout.js';
import { randomQuantizedCanonical } from '../../../harness/quant/random.js';
import { quantizationConfig, type QuantScheme } from '../../../harness/quant/scheme.js';
import { writeMoeCheckpoint } from '../../../harness/writer/write-checkpoint.js';
import type { DType } from '../../../harness/safetensors/dtypes.js';

const DTYPES: Record<string, { dtype: DType; config: ConfigDtype; quant?: QuantScheme['method'] }> = {
  f32: { dtype: 'F32', config: 'float32' },
  bf16: { dtype: 'BF16', config: 'bfloat16' },
  f16: { dtype: 'F16', config: 'float16' },
  // Quantized routed experts (spec §4), BF16 elsewhere: FP8 with 128x128 blocks, MXFP4 (gpt_oss).
  fp8: { dtype: 'BF16', config: 'bfloat16', quant: 'fp8' },
  mxfp4: { dtype: 'BF16', config: 'bfloat16', quant: 'mxfp4' },
};

const USAGE = `usage: moe-conformance generate --model-type T --layout original|fused --dtype f32|bf16|f16|fp8|mxfp4
         --experts E --hidden H --intermediate I --layers N --seed S --out DIR
         [--shared-intermediate Is] [--top-k K] [--max-shard-bytes B]

model types: ${MODEL_TYPES.join(', ')}`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'model-type': { type: 'string' },
    layout: { type: 'string' },
    dtype: { type: 'string' },
    experts: { type: 'string' },
    hidden: { type: 'string' },
    intermediate: { type: 'string' },
    'shared-intermediate': { type: 'string' },
    'top-k': { type: 'string' },
    layers: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    'max-shard-bytes': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const modelType = values['model-type'];
  if (modelType === undefined || !MODEL_TYPES.includes(modelType)) throw new UsageError(`--model-type takes one of ${MODEL_TYPES.join(', ')}`);
  const layout = values.layout ?? 'original';
  if (!(LAYOUT_NAMES as readonly string[]).includes(layout)) throw new UsageError(`--layout takes ${LAYOUT_NAMES.join(' or ')}`);
  const dtype = DTYPES[values.dtype ?? 'f32'];
  if (!dtype) throw new UsageError(`--dtype takes ${Object.keys(DTYPES).join(', ')}`);
  if (values.out === undefined) throw new UsageError('--out is required');
  const required = (name: 'experts' | 'hidden' | 'intermediate' | 'layers') => {
    const v = intOption(values[name], name, 0);
    if (v < 1) throw new UsageError(`--${name} is required and must be at least 1`);
    return v;
  };
  const sizes = {
    modelType,
    experts: required('experts'),
    hidden: required('hidden'),
    intermediate: required('intermediate'),
    layers: required('layers'),
    sharedIntermediate: intOption(values['shared-intermediate'], 'shared-intermediate', 0),
    topK: intOption(values['top-k'], 'top-k', 2),
  };
  const seed = intOption(values.seed, 'seed', 0);
  const maxShardBytes = intOption(values['max-shard-bytes'], 'max-shard-bytes', 0);
  try {
    const quant = dtype.quant ? { quantization_config: quantizationConfig(dtype.quant) } : {};
    const config = new ModelConfig(buildConfig({ ...sizes, topK: Math.min(sizes.topK, sizes.experts) }, dtype.config, quant));
    const { dims, scheme } = moeLayoutsOf(config);
    const canonical = scheme ? randomQuantizedCanonical(dims, scheme, seed) : randomCanonical(dims, dtype.dtype, seed);
    await writeMoeCheckpoint(values.out, {
      config,
      layout: layout as LayoutName,
      canonical,
      ...(maxShardBytes > 0 ? { plan: { maxShardBytes } } : {}),
    });
    process.stdout.write(`wrote ${modelType} (${layout}, ${dtype.dtype}) to ${values.out}\n`);
    return 0;
  } catch (e) {
    return commandFailure('generate', e);
  }
}
