// Why quantized expert tensors cannot be read or cut: each names the tensor and what was
// expected against what was found.
import { MoeConformanceError } from '../errors.js';

export class QuantError extends MoeConformanceError {}

/** `quantization_config` in config.json is absent where needed, of an unknown method, or malformed. */
export class QuantConfigError extends QuantError {}

/** Fields of a config object as an error shows what it found: `num_bits 8, type "int"`, `absent` where missing (never "undefined" or "[object Object]"). */
export function showFields(o: Record<string, unknown>, keys: readonly string[]): string {
  return keys.map((k) => `${k} ${o[k] === undefined ? 'absent' : JSON.stringify(o[k])}`).join(', ');
}

/** A scale tensor's shape or dtype does not match the weight it scales. */
export class ScaleMismatch extends QuantError {}

/** A quantized weight has a dtype or shape the format does not allow (e.g. MXFP4 blocks not 16 bytes). */
export class QuantizedWeightError extends QuantError {}

/**
 * The router (or a selection bias) is stored quantized, or with quantization tensors beside
 * it: routers are never quantized (spec/layouts.md §4), and serving one dequantized changes
 * which experts are selected.
 */
export class QuantizedRouter extends QuantError {}

/** Float dtypes a router and its biases may have. */
export const ROUTER_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];

/** Keys of quantization tensors as the producers name them beside a weight (`.weight_scale`, `.qweight`, ...). */
const QUANT_TENSOR = /\.(weight_scale(_inv|_2)?|input_scale|weight_packed|weight_zero_point|weight_g_idx|weight_shape|qweight|qzeros|scales|g_idx)$/;

/** Whether `key` is a quantization tensor of a router (`mlp.gate.weight_scale`, `router.layer.qweight`, `router.classifier.weight_scale`; not shared-expert gates). */
export function isRouterQuantTensor(key: string): boolean {
  return QUANT_TENSOR.test(key) && /(^|\.)(gate|router)(\.layer|\.wg|\.classifier)?\.[a-z_0-9]+$/.test(key) && !/experts?\.|shared/.test(key);
}
