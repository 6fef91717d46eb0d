// Why a parallel request cannot be served: refused before any byte is read.
import { MoeConformanceError } from '../errors.js';

/** A TP/EP request that does not fit the model (`I % T != 0`, `P > E`, a rank out of range, ...). */
export class InvalidParallelRequest extends MoeConformanceError {}
