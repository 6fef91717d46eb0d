// The library entry point (`import ... from 'moe-conformance'`): the pieces a backend
// implementer or a tool author needs, from the format up to the conformance runner.
// `moe-conformance/vitest` (properties/vitest.ts) is the test-suite entry point.

// Core contracts
export * from './errors.js';
export * from './tensor.js';
export type { MoeSemantics, Routing, ExpertActivation } from './layouts/semantics.js';

// The safetensors format, exactly as the reference reads and writes it
export * from './safetensors/dtypes.js';
export * from './safetensors/codecs.js';
export * from './safetensors/errors.js';
export { parseHeader, parseSafetensors, SafetensorsFile, tensorByteLength, type TensorInfo } from './safetensors/read.js';
export { serializeHeader, serializeSafetensors, writeSafetensors, type TensorSource } from './safetensors/write.js';

// Hugging Face checkpoint directories
export { ModelConfig } from './checkpoint/config.js';
export { CheckpointDir } from './checkpoint/directory.js';
export { writeCheckpointDir, type ShardPlan } from './checkpoint/write.js';
export * from './checkpoint/errors.js';

// Layouts, the reference loader and the writer
export { MODEL_TYPES, LAYOUT_NAMES, entryFor, semanticsOf, type LayoutName, type MoeDims } from './layouts/registry.js';
export { detect } from './layouts/detect.js';
export * from './layouts/errors.js';
export { referenceLoader, loadCanonical, planLoad, materialize, writePlan, type LoadPlan } from './loader/load.js';
export { checkRequest, expertsOf, tpSlice, EP_PLACEMENTS } from './loader/cut.js';
export { InvalidParallelRequest } from './loader/errors.js';
export { writeMoeCheckpoint, storedTensors, type MoeWriteRequest } from './writer/write-checkpoint.js';
export { buildConfig, type ModelSizes } from './writer/config.js';
export { randomCanonical } from './writer/random.js';

// Comparison
export { firstDifference, assertBitIdentical, describeDifference, type BitDifference } from './compare/bits.js';
export { compareToBounds, findRoutingTies, type Tier, type MismatchReport } from './compare/tolerance.js';
export { compareCheckpoints, CheckpointRefused } from './compare/checkpoints.js';

// Kernels and golden fixtures
export type { MoeBackend, MoeForwardResult, RankTensors } from '../kernels/backend.js';
export { referenceBackend, referenceForward } from '../kernels/moe.js';
export { route } from '../kernels/routing.js';
export { BACKENDS, backendNames, createBackends } from '../kernels/backends.js';
export { loadRanks } from '../kernels/ranks.js';
export { discoverFixtures, readGolden, runGolden, DEFAULT_SPLITS } from '../golden/golden.js';

// The conformance runner
export { commandLoader, LoaderCrashed, LoaderTimedOut, LoaderRefused, LoaderOutputInvalid } from './conformance/command-loader.js';
export { runCases, type ConformanceCase, type RunOptions } from './conformance/runner.js';
export { caseId, formatCaseId, parseCaseId } from './conformance/case-id.js';
export { Expectations } from './conformance/expectations.js';
export type { CaseResult, CaseStatus } from './conformance/results.js';
