// The library entry point (`import ... from 'moe-conformance'`): the pieces a backend
// implementer or a tool author needs, from the format up to the conformance runner.
// `moe-conformance/vitest` (properties/vitest.ts) is the test-suite entry point, and
// `moe-conformance/loader-kit` (harness/protocol/serve.ts) serves a Node loader in both protocol modes.

// Core contracts
export * from '../harness/errors.js';
export * from '../harness/tensor.js';
export type { MoeSemantics, Routing, ExpertActivation } from '../harness/layouts/semantics.js';

// The safetensors format, exactly as the reference reads and writes it
export * from '../harness/safetensors/dtypes.js';
export * from '../harness/safetensors/codecs.js';
export * from '../harness/safetensors/errors.js';
export { parseHeader, parseSafetensors, SafetensorsFile, tensorByteLength, type TensorInfo } from '../harness/safetensors/read.js';
export { serializeHeader, serializeSafetensors, writeSafetensors, type TensorSource } from '../harness/safetensors/write.js';

// Hugging Face checkpoint directories
export { ModelConfig } from '../harness/checkpoint/config.js';
export { CheckpointDir } from '../harness/checkpoint/directory.js';
export { writeCheckpointDir, type ShardPlan } from '../harness/checkpoint/write.js';
export * from '../harness/checkpoint/errors.js';

// Layouts, the reference loader and the writer
export { semanticsOf } from '../harness/quant/layout.js';
export { MODEL_TYPES, LAYOUT_NAMES, entryFor, type LayoutName, type MoeDims } from '../harness/layouts/registry.js';
export { detect } from '../harness/loader/detect.js';
export * from '../harness/layouts/errors.js';
export { referenceLoader, loadCanonical, planLoad, materialize, writePlan, type LoadPlan } from '../harness/loader/load.js';
export { checkRequest, expertsOf, tpSlice, EP_PLACEMENTS } from '../harness/canonical/cut.js';
export { InvalidParallelRequest } from '../harness/canonical/errors.js';
export { writeMoeCheckpoint, storedTensors, type MoeWriteRequest } from '../harness/writer/write-checkpoint.js';
export { buildConfig, type ModelSizes } from '../harness/writer/config.js';
export { randomCanonical } from '../harness/canonical/random.js';

// Comparison
export { firstDifference, assertBitIdentical, describeDifference, type BitDifference } from '../harness/compare/bits.js';
export { compareToBounds, findRoutingTies, type Tier, type MismatchReport } from '../harness/compare/tolerance.js';
export { compareCheckpoints, CheckpointRefused } from '../harness/compare/checkpoints.js';
export { diagnoseCanonical, DIAGNOSIS_KINDS, type Diagnosis, type DiagnosisKind, type DiagnoseContext } from '../harness/compare/diagnose.js';

// Kernels and golden fixtures
export type { MoeBackend, MoeForwardResult, RankTensors } from '../kernels/backend.js';
export { referenceBackend, referenceForward } from '../kernels/moe.js';
export { route } from '../kernels/routing.js';
export { BACKENDS, backendNames, createBackends } from '../kernels/backends.js';
export { loadRanks } from '../kernels/ranks.js';
export { discoverFixtures, readGolden, runGolden, DEFAULT_SPLITS } from '../golden/golden.js';

// The conformance runner
export { commandLoader, LoaderCrashed, LoaderTimedOut, LoaderRefused, LoaderOutputInvalid, isReasonedRefusal, loaderStderr } from '../harness/protocol/command-loader.js';
export { workerLoader, WorkerCrashed, WorkerTimedOut, WorkerRefused, type WorkerLoader, type WorkerLoaderOptions } from '../harness/protocol/worker-loader.js';
export { WorkerHandshakeError, WorkerAnswerInvalid, WorkerLineTooLong, type Handshake } from '../harness/protocol/worker-messages.js';
export { parseCapabilities, parseCapabilitiesJson, undeclaredReason, CapabilitiesError, type Capabilities, type CaseNeeds, type DeclaredLoader } from '../harness/conformance/capabilities.js';
export { runCases, type RunOptions } from './runner.js';
export { caseId, formatCaseId, parseCaseId } from '../harness/conformance/case-id.js';
export { Expectations } from '../harness/conformance/expectations.js';
export { CASE_STATUSES, type CaseResult, type CaseStatus, type ConformanceCase } from '../harness/conformance/results.js';
export { diffResults, diffText, type ResultsDiff } from './reporters/diff.js';
export { coverage, coverageLines } from './reporters/coverage.js';
export { readResults } from './reporters/json.js';
export type { RunInfo } from '../harness/conformance/run-info.js';
