// Which quantization a checkpoint uses (config.json's `quantization_config`), and which form
// a loader's output is in (spec §4): quantized bytes with companion tensors, or declared
// dequantized by the `__metadata__` key below. Each format detects its own configs
// (./formats/).
import type { QuantGeometry } from '../layouts/ops.js';
import { QuantConfigError, showFields } from './errors.js';
import { FORMATS, formatOf, QUANT_METHODS, type QuantScheme } from './formats/index.js';

export type { QuantScheme } from './formats/index.js';
export { QUANT_METHODS } from './formats/index.js';
export { fp8BlockScheme as fp8Scheme } from './formats/fp8-block.js';
export { MXFP4_SCHEME } from './formats/mxfp4.js';

/** The scheme a geometry came from: the layout floor carries schemes as QuantGeometry only. */
export function schemeOf(g: QuantGeometry | undefined): QuantScheme | undefined {
  if (g === undefined) return undefined;
  formatOf(g);
  return g as QuantScheme;
}

/** The quant_method values of the formats, for the refusal of an unknown one. */
const KNOWN = ['fp8', 'mxfp4', 'modelopt (NVFP4, FP8)', 'compressed-tensors (float-quantized, pack-quantized, mxfp4-pack-quantized)'];

/** The scheme of a config.json (its raw object), or undefined where it has no quantization_config. */
export function quantSchemeOf(config: Record<string, unknown>, file = 'config.json'): QuantScheme | undefined {
  const q = config.quantization_config;
  if (q === undefined || q === null) return undefined;
  if (typeof q !== 'object' || Array.isArray(q)) {
    throw new QuantConfigError('quantization_config must be an object', { file, expected: 'object', found: Array.isArray(q) ? 'array' : typeof q });
  }
  for (const f of FORMATS) {
    const s = f.detect(q as Record<string, unknown>, file);
    if (s !== undefined) return s;
  }
  const c = q as Record<string, unknown>;
  throw new QuantConfigError('unsupported quantization_config', {
    file,
    tensor: 'quantization_config.quant_method',
    expected: `${KNOWN.join('|')} (formats ${QUANT_METHODS.join(', ')})`,
    found: showFields(c, ['quant_method', 'quant_algo', 'format']),
  });
}

/** The `quantization_config` a generated checkpoint of this scheme declares, with its producer's keys. */
export function quantizationConfig(scheme: QuantScheme): Record<string, unknown> {
  return formatOf(scheme).config(scheme);
}

/** The output-file metadata key by which a loader declares that it wrote dequantized F32 weights. */
export const DEQUANTIZED_METADATA_KEY = 'moe_conformance.dequantized';

/** Whether an output file's `__metadata__` declares the dequantized form; any value but "true"/"false" is refused. */
export function declaresDequantized(metadata: Readonly<Record<string, string>> | undefined, file?: string): boolean {
  const v = metadata?.[DEQUANTIZED_METADATA_KEY];
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  throw new QuantConfigError(`__metadata__ ${DEQUANTIZED_METADATA_KEY} must be "true" or "false"`, { file, expected: '"true" | "false"', found: v });
}
