// Typed failures of the gpu.js backends. Each says which tensor or which mode, and what
// was expected versus found, so a red row in a report is actionable on its own.
import { MoeConformanceError } from '../../harness/errors.js';

/** No WebGPU adapter could be obtained (Dawn missing, driver missing, timed out). */
export class WebGpuUnavailableError extends MoeConformanceError {}

/** gpu.js ran a kernel on another mode than the one asked for (a silent fallback). */
export class BackendFallbackError extends MoeConformanceError {}

/** A canonical tensor or the input does not have the shape or dtype the forward needs. */
export class KernelInputError extends MoeConformanceError {}
