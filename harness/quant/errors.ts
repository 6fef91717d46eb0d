// Why quantized expert tensors cannot be read or cut: each names the tensor and what was
// expected against what was found.
import { MoeConformanceError } from '../errors.js';

export class QuantError extends MoeConformanceError {}

/** `quantization_config` in config.json is absent where needed, of an unknown method, or malformed. */
export class QuantConfigError extends QuantError {}

/** A scale tensor's shape or dtype does not match the weight it scales. */
export class ScaleMismatch extends QuantError {}

/** A quantized weight has a dtype or shape the format does not allow (e.g. MXFP4 blocks not 16 bytes). */
export class QuantizedWeightError extends QuantError {}
