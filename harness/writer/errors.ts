// Why whole canonical weights cannot be written as a checkpoint.
import { MoeConformanceError } from '../errors.js';

/** Canonical weights or generation options that do not fit the model type and sizes asked for. */
export class WriterInputError extends MoeConformanceError {}
