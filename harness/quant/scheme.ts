// Which quantization a checkpoint uses (config.json's `quantization_config`), and which form
// a loader's output is in (spec §4): quantized bytes with scale tensors, or declared
// dequantized by the `__metadata__` key below.
import type { QuantGeometry } from '../layouts/ops.js';
import { parseBlockSize, type BlockSize } from './fp8-block.js';
import { MX_BLOCK } from './mxfp4.js';
import { QuantConfigError } from './errors.js';

/** A format and its parameters, with the geometry the layout floor reads (see QuantGeometry). */
export type QuantScheme = ({ method: 'fp8'; block: BlockSize } | { method: 'mxfp4' }) & QuantGeometry;

/** FP8 with block scales: one E4M3 value per element, a scale per block; TP may split a block (both ranks hold its scale). */
export function fp8Scheme(block: BlockSize): QuantScheme {
  return { method: 'fp8', block, packing: 1, scaleBlock: block, splitsBlocks: true };
}

/** MXFP4: two E2M1 values per byte, an E8M0 scale per 32 elements of a row; a TP rank holds whole blocks. */
export const MXFP4_SCHEME: QuantScheme = { method: 'mxfp4', packing: 2, scaleBlock: { rows: 1, cols: MX_BLOCK }, splitsBlocks: false };

/** The scheme a geometry came from: the layout floor carries schemes as QuantGeometry only. */
export function schemeOf(g: QuantGeometry | undefined): QuantScheme | undefined {
  if (g === undefined) return undefined;
  if (g.method !== 'fp8' && g.method !== 'mxfp4') throw new QuantConfigError('unknown quantization scheme', { expected: QUANT_METHODS.join('|'), found: g.method });
  return g as QuantScheme;
}

export const QUANT_METHODS = ['fp8', 'mxfp4'] as const;

/** transformers' FineGrainedFP8Config default, used where `weight_block_size` is absent. */
const DEFAULT_FP8_BLOCK = [128, 128];

/** The scheme of a config.json (its raw object), or undefined where it has no quantization_config. */
export function quantSchemeOf(config: Record<string, unknown>, file = 'config.json'): QuantScheme | undefined {
  const q = config.quantization_config;
  if (q === undefined || q === null) return undefined;
  if (typeof q !== 'object' || Array.isArray(q)) {
    throw new QuantConfigError('quantization_config must be an object', { file, expected: 'object', found: Array.isArray(q) ? 'array' : typeof q });
  }
  const c = q as Record<string, unknown>;
  switch (c.quant_method) {
    case 'fp8':
      if (c.fmt !== undefined && c.fmt !== 'e4m3') {
        throw new QuantConfigError('only E4M3 FP8 weights are supported', { file, tensor: 'quantization_config.fmt', expected: 'e4m3', found: c.fmt });
      }
      return fp8Scheme(parseBlockSize(c.weight_block_size ?? DEFAULT_FP8_BLOCK));
    case 'mxfp4':
      return MXFP4_SCHEME;
    default:
      throw new QuantConfigError('unsupported quant_method', { file, tensor: 'quantization_config.quant_method', expected: QUANT_METHODS.join('|'), found: c.quant_method });
  }
}

/** The `quantization_config` a generated checkpoint declares, with transformers' keys. */
export function quantizationConfig(method: QuantScheme['method'], block: [number, number] = DEFAULT_FP8_BLOCK as [number, number]): Record<string, unknown> {
  return method === 'fp8' ? { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: block } : { quant_method: 'mxfp4' };
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
