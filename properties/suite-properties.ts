// The conformance suite as fast-check properties, independent of any test runner: one
// property per model type for valid loads, and one each for layout invariance, broken
// checkpoints and invalid requests. properties/vitest.ts registers them as tests; the
// mutant test runs them directly to see how soon each wrong loader is caught.
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseHash, parseCaseId } from '../harness/conformance/case-id.js';
import { Expectations } from '../harness/conformance/expectations.js';
import { failureOf } from '../harness/conformance/results.js';
import type { CaseFailure, CaseOutcome } from '../harness/conformance/results.js';
import { describeDiagnosis } from '../harness/compare/diagnose.js';
import type { Canonical, Loader, ParallelRequest } from '../harness/tensor.js';
import type { MoeBackend } from '../kernels/backend.js';
import { caseArb, decoyCaseArb } from './arbitraries/cases.js';
import { ALL_MODEL_TYPES } from './arbitraries/models.js';
import { checkCase, type PropertyContext, type Target } from './properties.js';
import { coverageSpecs } from './suite.js';
import { parseForms } from '../harness/canonical/forms.js';
import { LAYOUTS, QUANT_DTYPE_NAMES, specIdText, specNeeds, type CaseSpec, type QuantDtypeName } from './spec.js';
import { parseCapabilities, undeclaredReason, type Capabilities } from '../harness/conformance/capabilities.js';
import { QUANT_FAMILIES, quantCaseArb, quantModelTypes } from './arbitraries/quantized.js';

export type { Capabilities };

export interface SuiteOptions {
  name: string;
  load: Loader | ((dir: string, req: ParallelRequest) => Promise<Canonical>);
  forward?: MoeBackend;
  capabilities?: Capabilities;
  /** Expectations text (`ID-or-pattern fail|skip # reason` lines) or a parsed set. */
  expectations?: string | Expectations;
  /** Generated cases per property (default 5; the load property runs this many per model type). */
  cases?: number;
  /** Default: $FC_SEED, else 42. */
  seed?: number;
  /** Time limit of each property's test in milliseconds (default 300000: vitest's own 5 s default is far too short). */
  testTimeoutMs?: number;
}

export interface SuiteProperty {
  title: string;
  arb: fc.Arbitrary<CaseSpec>;
  numRuns: number;
  /** Cases run before the drawn ones, every time: the coverage the property guarantees (each layout of its type, a refusal per type). */
  examples?: CaseSpec[];
  /** Added to the suite's seed, so properties that differ only in model type draw different sizes. */
  seedOffset: number;
}

/** A case failed: the message carries the case ID, the diagnosis and the way to replay it; `failure` the record itself. */
export class ConformanceCaseFailure extends Error {
  override readonly name = 'ConformanceCaseFailure';
  constructor(message: string, readonly failure?: CaseFailure) {
    super(message);
  }
}

export const DEFAULT_CASES = 5;

export function defaultSeed(): number {
  return Number(process.env.FC_SEED ?? 42);
}

/** The suite's capabilities, checked by the same parser as a worker's handshake and `check --capabilities`. */
export function capabilitiesOf(opts: Pick<SuiteOptions, 'name' | 'capabilities'>): Capabilities | undefined {
  return opts.capabilities && parseCapabilities(opts.capabilities, `${opts.name}: capabilities`);
}

/**
 * The properties the capabilities leave out, each with why: vitest lists them as skipped
 * ("not declared"), so a narrow loader's report says what it was not asked.
 */
export function undeclaredProperties(opts: SuiteOptions): Array<{ title: string; reason: string }> {
  const c = capabilitiesOf(opts);
  if (!c) return [];
  const out: Array<{ title: string; reason: string }> = [];
  for (const t of ALL_MODEL_TYPES) if (c.modelTypes && !c.modelTypes.includes(t)) out.push({ title: `${t}: every rank loads bit-exact`, reason: `model type ${t} (declared: ${c.modelTypes.join(', ') || 'none'})` });
  const missing = LAYOUTS.filter((l) => c.layouts && !c.layouts.includes(l));
  if (missing.length) out.push({ title: 'original and fused layouts load to the same bytes', reason: `layout ${missing.join(', ')} (declared: ${c.layouts!.join(', ') || 'none'})` });
  for (const d of QUANT_DTYPE_NAMES) if (c.dtypes && !c.dtypes.includes(d)) out.push({ title: `quantized checkpoints (${d})`, reason: `dtype ${d} (declared: ${c.dtypes.join(', ') || 'none'})` });
  return out;
}

export function suiteProperties(opts: SuiteOptions): SuiteProperty[] {
  const c = capabilitiesOf(opts) ?? {};
  const n = opts.cases ?? DEFAULT_CASES;
  const sizes = (max: number | undefined) => Array.from({ length: Math.max(1, max ?? 4) }, (_, i) => i + 1);
  const filter = {
    ...(c.dtypes && { dtypes: c.dtypes }),
    ...(c.layouts && { layouts: c.layouts }),
    tpSizes: sizes(c.maxTp),
    epSizes: sizes(c.maxEp),
  };
  const types = c.modelTypes ?? ALL_MODEL_TYPES;
  // The quantized family, last (so the others draw the same cases): the formats the target accepts and whose models it serves.
  const served = (d: QuantDtypeName) => (!c.dtypes || c.dtypes.includes(d)) && quantModelTypes(d).some((t) => (types as readonly string[]).includes(t));
  const quantized = QUANT_FAMILIES.map((f) => ({ ...f, dtypes: f.dtypes.filter(served) })).filter((f) => f.dtypes.length > 0);
  // Coverage first (suite.ts): a refusal of each declared type and each invalid request, run
  // as fast-check examples. (Not for loads: an example does not shrink, and a failing load is
  // worth its shrunk counterexample; their per-type properties already reach every type.)
  const seed = opts.seed ?? defaultSeed();
  const covered = (kind: CaseSpec['kind'], modelTypes: readonly string[]) => coverageSpecs(seed, { ...filter, modelTypes, kinds: [kind] });
  const properties: Array<Omit<SuiteProperty, 'seedOffset'>> = [
    ...types.map((t) => ({ title: `${t}: every rank loads bit-exact, reassembles, and computes the unsharded forward`, arb: caseArb({ ...filter, modelTypes: [t], kinds: ['load'] }), numRuns: n })),
    ...(LAYOUTS.every((l) => (c.layouts ?? LAYOUTS).includes(l)) ? [{ title: 'original and fused layouts load to the same bytes', arb: caseArb({ ...filter, modelTypes: types, kinds: ['layout'] }), numRuns: 2 * n }] : []),
    { title: 'broken checkpoints are refused', arb: caseArb({ ...filter, modelTypes: types, kinds: ['refuse'] }), numRuns: 2 * n, examples: covered('refuse', types) },
    { title: 'invalid requests are refused', arb: caseArb({ ...filter, modelTypes: types, kinds: ['request'] }), numRuns: n, examples: covered('request', types) },
    ...quantized.map((f) => {
      const arb = quantCaseArb({ tpSizes: filter.tpSizes, epSizes: filter.epSizes }, f.dtypes, types);
      // Coverage first here too: every family refuses a checkpoint that quantizes its router, whatever the draw (spec/layouts.md §4).
      const routerRefusal = fc.sample(arb.filter((s) => s.kind === 'refuse'), { seed, numRuns: 1 });
      return { title: `quantized checkpoints, ${f.label}: every rank loads bit-exact, reassembles and computes the unsharded forward; layouts agree`, arb, numRuns: n, examples: routerRefusal };
    }),
    // Last, so that every property above runs as it did before it was added (spec §2: a file the index does not name is not read).
    { title: 'a .safetensors file beside the index that the index does not name is not read (decoy=1)', arb: decoyCaseArb({ ...filter, modelTypes: types }), numRuns: n },
  ];
  return properties.map((p) => ({ ...p, seedOffset: caseHash(p.title) }));
}

/** The target of the options; the capabilities (with their engine forms) are parsed here, so an unknown or conflicting form fails before any case runs. */
export function targetOf(opts: Pick<SuiteOptions, 'name' | 'load' | 'forward' | 'capabilities'>): Target {
  const loader: Loader = typeof opts.load === 'function' ? { name: opts.name, load: opts.load } : opts.load;
  const declared = capabilitiesOf(opts)?.forms;
  const forms = declared?.length ? parseForms(declared) : undefined;
  return { loader, ...(opts.forward && { forward: opts.forward }), ...(forms && { forms }) };
}

function expectationsOf(e: SuiteOptions['expectations']): Expectations {
  return e === undefined ? Expectations.empty() : typeof e === 'string' ? Expectations.parse(e) : e;
}

/** The fast-check predicate of a property: throws ConformanceCaseFailure naming the case and its replay. */
/** How a property reports beyond pass and fail: where replay lines point, what the loader declared, and expected failures as they happen. */
export interface PredicateOptions {
  replay?: ReplayLine;
  capabilities?: Capabilities;
  /** A case failed as an expectation line said it would (a known limit): counted, not hidden. */
  onExpectedFailure?: (id: string, reason: string) => void;
}

export function casePredicate(target: Target, context: PropertyContext, expectations: Expectations, o: PredicateOptions = {}): (spec: CaseSpec) => Promise<void> {
  const replayLine = o.replay ?? checkReplay;
  const capabilities = o.capabilities;
  return async (spec) => {
    // Generation already keeps to the capabilities' sizes and names; what it cannot (a placement) is skipped, never passed.
    fc.pre(undeclaredReason(capabilities, specNeeds(spec)) === undefined);
    const id = specIdText(spec);
    const expected = expectations.lookup(parseCaseId(id));
    if (expected?.kind === 'skip') return;
    let outcome: CaseOutcome;
    try {
      outcome = await checkCase(spec, target, context);
    } catch (e) {
      outcome = { status: 'fail', failure: failureOf(e) };
    }
    const replay = `replay: ${replayLine(id)}`;
    if (expected?.kind === 'fail') {
      if (outcome.status === 'fail') {
        o.onExpectedFailure?.(id, expected.reason);
        return;
      }
      throw new ConformanceCaseFailure(`case ${id} passed but is expected to fail (${expected.reason}): delete the expectation\n${replay}`);
    }
    if (outcome.status === 'inconclusive') {
      // Never a pass: the loader refused the valid twin of a type its capabilities declare.
      throw new ConformanceCaseFailure(`case ${id} is inconclusive: ${outcome.note}\n${replay}`);
    }
    if (outcome.status === 'fail' && !expectations.lookupFailure(parseCaseId(id), outcome.failure)) {
      const f = outcome.failure;
      const diagnosis = (f.diagnosis ?? []).map((x) => `diagnosis: ${describeDiagnosis(x)}`);
      const facts = [
        f.rank && `rank:     ${f.rank}`,
        f.layout && `layout:   ${f.layout}`,
        f.defect && `defect:   ${f.defect}`,
        f.tensor && `tensor:   ${f.tensor}`,
        f.expected && `expected: ${f.expected}`,
        f.found && `found:    ${f.found}`,
        outcome.stderr && `loader stderr (tail):\n${outcome.stderr}`,
      ].filter(Boolean).join('\n');
      throw new ConformanceCaseFailure(`case ${id}\n${[...diagnosis, f.message].join('\n')}${facts ? `\n${facts}` : ''}\n${replay}`, f);
    }
  };
}

/** Runs one property without throwing; fast-check's details say whether, when and how it failed. */
export async function checkSuiteProperty(
  p: SuiteProperty,
  opts: SuiteOptions,
  params: { path?: string; endOnFailure?: boolean; context?: Pick<PropertyContext, 'checkpoints' | 'reference'> } & Omit<PredicateOptions, 'capabilities'> = {},
): Promise<fc.RunDetails<[CaseSpec]>> {
  const seed = opts.seed ?? defaultSeed();
  const workDir = await mkdtemp(join(tmpdir(), 'moe-props-'));
  try {
    const predicate = casePredicate(targetOf(opts), { ...params.context, workDir }, expectationsOf(opts.expectations), { ...params, capabilities: capabilitiesOf(opts) });
    return await fc.check(fc.asyncProperty(p.arb, predicate), {
      seed: (seed + p.seedOffset) | 0,
      numRuns: p.numRuns,
      ...(p.examples?.length && { examples: p.examples.map((e): [CaseSpec] => [e]) }),
      ...(params.path !== undefined && { path: params.path }),
      ...(params.endOnFailure && { endOnFailure: true }),
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The environment variable that makes a suite run exactly one case, by its ID (the replay line sets it). */
export const REPLAY_VARIABLE = 'MOE_CASE';

/** How a failure says to run exactly its case again: the test runner's form, or by default a command loader's check. */
export type ReplayLine = (id: string) => string;
const checkReplay: ReplayLine = (id) => `moe-conformance check --loader "CMD" --case '${id}'`;

/**
 * The report of a failed property, for a person: the harness's own failure first (case ID,
 * message, tensor, expected and found, the replay line that runs exactly that case), then
 * one line of fast-check's facts (how many cases ran, shrinks, seed and path).
 */
export function failureReport(details: fc.RunDetails<[CaseSpec]>): string | undefined {
  if (!details.failed) return undefined;
  const harness = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance ?? 'property failed');
  const facts = `fast-check: failed on case ${details.numRuns} of the property's run, shrunk ${details.numShrinks} time(s); seed ${details.seed}, path ${JSON.stringify(details.counterexamplePath)}`;
  return `${harness}\n${facts}`;
}
