// moe-conformance check: the conformance suite against a loader command (spec §2). It
// generates checkpoints into a temporary folder, calls the command once per rank, checks
// everything spec §3 asks, and reports. Exit 0 only if every case passed.
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { selfCommand, shellQuote, UsageError } from '../args.js';
import { all, choices, flag, int, ints, one, reportsOf, shardOf, startCommand, type CommandDef, type Parsed } from '../options.js';
import { formatCaseId, matchesPattern, parseCasePattern } from '../../../harness/conformance/case-id.js';
import { commandLoader, killRunningLoaders } from '../../../harness/protocol/command-loader.js';
import { workerLoader, type WorkerLoader } from '../../../harness/protocol/worker-loader.js';
import { WorkerHandshakeError } from '../../../harness/protocol/worker-messages.js';
import { readCapabilitiesFile, type Capabilities, type DeclaredLoader } from '../../../harness/conformance/capabilities.js';
import { Expectations } from '../../../harness/conformance/expectations.js';
import { createProgress } from '../../progress.js';
import { REPORT_FORMATS } from '../../reporters/files.js';
import { mergeResults, readResults, readRunInfo } from '../../reporters/json.js';
import { runInfo } from '../../run-info.js';
import { reportResults } from '../report-results.js';
import { inShard, runCases } from '../../runner.js';
import type { ConformanceCase } from '../../../harness/conformance/results.js';
import { fixturesIn } from '../../../golden/golden.js';
import { goldenCases, parseGoldenCaseId } from '../../../properties/golden-cases.js';
import { generatedCases, quantDtypesOf, runSpecs } from '../../../properties/suite.js';
import { CaseSpecError, DTYPE_NAMES, LAYOUTS, QUANT_DTYPE_NAMES, parseSpec, type CaseSpec, type DtypeName, type Layout } from '../../../properties/spec.js';
import { checkSpec } from '../../../properties/materialize.js';
import { ALL_MODEL_TYPES } from '../../../properties/arbitraries/models.js';
import { ENGINE_FORMS, FormDeclarationError, parseForms, type FormSet } from '../../../harness/canonical/forms.js';
import type { Target } from '../../../properties/properties.js';

const DEF: CommandDef = {
  name: 'check',
  synopsis: ['--loader "CMD ARGS" [options]', '--merge A.json B.json ... [--report FORMAT FILE ...]'],
  description: `Runs the conformance suite against a loader command. The harness appends
--checkpoint DIR --out FILE --tp-size T --tp-rank r --ep-size P --ep-rank q --ep-placement X
(spec §2). "moe-conformance ..." names this package's own CLI, run directly by node (through
npx it would cost about a second more per call). With --worker, "CMD --worker" is started once
per job and kept alive, answering JSON-line requests (spec §7); its handshake declares its name,
version and capabilities. A case needing more than the loader declares (--capabilities FILE for
a command) is skipped as "not declared", with the reason, in every report. Quantized checkpoints
are drawn for the quantized dtypes --dtypes names, or else those the loader declares (a worker
is asked for its handshake first): for each, loads with TP and EP splits, both layouts and a
quantized router to refuse. A loader that declares no dtypes gets the float cases only.`,
  options: {
    loader: { args: ['"CMD ARGS"'], help: 'the loader command (required unless --merge)' },
    cases: { args: ['N'], help: 'generated f32/f16/bf16 cases; the first ones load every model type in each of its layouts and refuse a broken checkpoint of each type (the report says what ran). Each quantized dtype asked for or declared adds its own few cases', default: '100, or as many as that coverage takes (--list counts them)' },
    seed: { args: ['S'], help: 'seed of the case sampler', default: '$FC_SEED or 42' },
    'model-types': { args: ['A,B'], help: 'model types', default: 'all' },
    layouts: { args: ['A,B'], help: `layouts: ${LAYOUTS.join(', ')}`, default: 'both' },
    dtypes: { args: ['A,B'], help: `dtypes: ${DTYPE_NAMES.join(', ')}, and the quantized ${QUANT_DTYPE_NAMES.join(', ')}`, default: 'the float ones, and the quantized ones the loader declares' },
    tp: { args: ['1,2,4'], help: 'TP sizes to try, each >= 1', default: '1,2,3,4' },
    ep: { args: ['1,2,3'], help: 'EP sizes to try, each >= 1', default: '1,2,3,4' },
    worker: { help: 'run CMD as a worker (spec §7): one process per job, capabilities from its handshake' },
    capabilities: { args: ['FILE'], help: 'what a command loader supports (JSON, spec §7.3); cases that need more are skipped as not declared' },
    forms: { args: ['A,B'], help: `engine forms a command loader emits (spec §8): ${ENGINE_FORMS.map((f) => f.name).join(', ')}; its ranks are mapped to the canonical form before comparing (added to the capabilities' forms; a worker declares them in its handshake)`, default: 'none' },
    timeout: { args: ['SECONDS'], help: 'per loader call and per rank asked (a worker\'s handshake too), >= 1', default: '60' },
    jobs: { args: ['N'], help: 'cases at once, and workers, >= 1', default: '2' },
    golden: { args: ['DIR...'], help: 'golden fixture folders, or folders holding them (the package ships golden/hf)', default: 'none' },
    report: { args: ['FORMAT', 'FILE'], help: `write a report; FORMAT is one of ${REPORT_FORMATS.join(', ')}`, repeatable: true },
    'keep-failures': { args: ['DIR'], help: "keep each failing or inconclusive case's checkpoints, loader and reference outputs and a reason.txt, one folder per case" },
    expectations: { args: ['FILE'], help: 'lines "ID-or-pattern fail|skip [reason=/REGEX/] [diagnosis=KIND] # reason"' },
    shard: { args: ['i/n'], help: 'run the i-th of n disjoint parts (1 <= i <= n)' },
    case: { args: ['ID'], help: "replay one case; no sampling. With a * (a pattern like 'moe:load:model=gpt_oss;*'), run only the sampled cases it matches", repeatable: true },
    list: { help: 'print the IDs of the cases it would run, one per line, and exit (a command loader is not started; a worker is, for its handshake only: the quantized dtypes it declares are drawn)' },
    merge: { args: ['FILE...'], help: 'merge JSON results of --shard runs instead of running' },
  },
};

/** `--forms w31,eplb`: a declaration error (an unknown form, two that exclude each other) is a usage problem. */
function formsOf(p: Parsed): FormSet | undefined {
  const text = one(p, 'forms');
  if (text === undefined) return undefined;
  try {
    return parseForms(text.split(',').map((s) => s.trim()).filter(Boolean));
  } catch (e) {
    if (!(e instanceof FormDeclarationError)) throw e;
    p.problems.add(`--forms: ${e.message}`);
    return undefined;
  }
}

/** A command loader's declaration: its command, the capabilities file, and --forms added to the file's forms. */
/** A generated case's spec from a `--case` ID, refused as a usage error (exit 2) where it is malformed or names an impossible checkpoint or request. */
function caseSpecOf(id: string): CaseSpec {
  try {
    const spec = parseSpec(id);
    checkSpec(spec);
    return spec;
  } catch (e) {
    if (e instanceof CaseSpecError) throw new UsageError(`--case ${shellQuote(id)}: ${e.message}`);
    throw e;
  }
}

function commandDeclared(cmd: string, file: Capabilities | undefined, forms: FormSet | undefined): DeclaredLoader {
  const all = [...(file?.forms ?? []), ...(forms?.names ?? [])];
  const capabilities = forms ? { ...file, forms: parseForms([...new Set(all)]).names } : file;
  return { name: cmd, mode: 'command', ...(capabilities && { capabilities }) };
}

/**
 * Starts the first worker for its handshake. A worker that fails it is reported once and the
 * run goes on without declared capabilities: every case then fails with that typed error. A
 * refused handshake (spec §7.5) starts no other worker; a crash or a timeout is tried again.
 */
async function declaredWorker(worker: WorkerLoader, cmd: string): Promise<DeclaredLoader> {
  try {
    const h = await worker.handshake();
    return { name: h.loader.name, version: h.loader.version, mode: 'worker', ...(h.capabilities && { capabilities: h.capabilities }) };
  } catch (e) {
    const what = e instanceof WorkerHandshakeError
      ? 'error: the worker\'s handshake is invalid; no worker is started again and every case fails with it'
      : 'warning: the worker\'s handshake failed; every case will try a fresh worker';
    process.stderr.write(`${what}: ${(e as Error).name}: ${(e as Error).message}\n`);
    return { name: cmd, mode: 'worker' };
  }
}

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  const reports = reportsOf(p);
  const merge = all(p, 'merge');
  const golden = all(p, 'golden');
  if (merge.length) {
    p.problems.check();
    const sets = await Promise.all(merge.map(async (file) => ({ file, results: await readResults(file) })));
    // The shards ran the same loader and seed: the first file's run information stands for all.
    const run = await readRunInfo(merge[0]!);
    return reportResults(mergeResults(sets), reports, { ...(run && { run }) });
  }
  const loaderCommand = one(p, 'loader') ?? '';
  if (!one(p, 'loader')) p.problems.add('--loader "CMD ARGS" is required (or --merge)');
  const timeoutMs = 1000 * int(p, 'timeout', 60, 1);
  const seed = int(p, 'seed', Number(process.env.FC_SEED ?? 42));
  const modelTypes = choices(p, 'model-types', ALL_MODEL_TYPES);
  const layouts = choices<Layout>(p, 'layouts', LAYOUTS);
  const dtypes = choices<DtypeName>(p, 'dtypes', [...DTYPE_NAMES, ...QUANT_DTYPE_NAMES]);
  const tpSizes = ints(p, 'tp');
  const epSizes = ints(p, 'ep');
  // Absent: 100, or as many as the coverage set needs (every type × layout, a refusal of every type).
  const caseCount = one(p, 'cases') === undefined ? undefined : int(p, 'cases', 100, 1);
  const jobs = int(p, 'jobs', 2, 1);
  const shard = shardOf(p);
  const caseArgs = all(p, 'case');
  const expectationsFile = one(p, 'expectations');
  const keepFailures = one(p, 'keep-failures');
  const asWorker = flag(p, 'worker');
  const capabilitiesFile = one(p, 'capabilities');
  if (asWorker && capabilitiesFile !== undefined) p.problems.add('--capabilities is for command loaders: a worker declares its capabilities in its handshake');
  const list = flag(p, 'list');
  const cliForms = formsOf(p);
  if (asWorker && cliForms) p.problems.add('--forms is for command loaders: a worker declares its forms in its handshake');
  p.problems.check();
  const expectations = expectationsFile ? await Expectations.read(expectationsFile) : undefined;
  const fileCapabilities = capabilitiesFile !== undefined ? await readCapabilitiesFile(capabilitiesFile) : undefined;
  const workDir = await mkdtemp(join(tmpdir(), 'moe-check-'));
  const worker = asWorker ? workerLoader(loaderCommand, { timeoutMs, workDir, workers: jobs }) : undefined;
  const loader = worker ?? commandLoader(loaderCommand, { timeoutMs, workDir });
  // The declared engine forms are known after the handshake; every case reads them from here when it runs.
  const target: Target = { loader };
  // Loaders run in their own process groups: on Ctrl-C or kill, end them and the temporary folder too.
  const interrupted = (signal: NodeJS.Signals) => {
    killRunningLoaders();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const goldenArgs = golden.length ? ` --golden ${golden.map((g) => shellQuote(resolve(g))).join(' ')}` : '';
  // A replay declares what this run declared: the capabilities file and --forms (the forms decide how ranks are compared).
  const formsArg = `${capabilitiesFile !== undefined ? ` --capabilities ${shellQuote(resolve(capabilitiesFile))}` : ''}${cliForms ? ` --forms ${cliForms.names.join(',')}` : ''}`;
  // ... and the time it gave the loader, so that a replayed hang is cut where it was.
  const timeoutArg = timeoutMs !== 60_000 ? ` --timeout ${timeoutMs / 1000}` : '';
  const replay = (id: string) => `${selfCommand()} check --loader ${shellQuote(loaderCommand)}${worker ? ' --worker' : ''}${formsArg}${timeoutArg} --case ${shellQuote(id)}${id.startsWith('moe:golden:') ? goldenArgs : ''}`;
  try {
    const ctx = { workDir, ...(keepFailures && { keepFailures: resolve(keepFailures) }) };
    let cases: ConformanceCase[];
    const patterns = caseArgs.filter((c) => c.includes('*')).map(parseCasePattern);
    const ids = caseArgs.filter((c) => !c.includes('*'));
    // What the loader declares decides the quantized cases a sampled run draws: a worker's handshake comes first then (for --list too).
    let declared: DeclaredLoader | undefined = worker ? undefined : commandDeclared(loaderCommand, fileCapabilities, cliForms);
    if (worker && !ids.length) declared = await declaredWorker(worker, loaderCommand);
    if (ids.length) {
      const specs: CaseSpec[] = [];
      cases = [];
      for (const id of ids) {
        const g = await parseGoldenCaseId(id, golden);
        if (g) cases.push(...(await goldenCases([], target, replay, g)));
        else specs.push(caseSpecOf(id));
      }
      cases.push(...generatedCases(specs, target, ctx, replay));
    } else {
      const filter = {
        ...(modelTypes && { modelTypes }),
        ...(layouts && { layouts }),
        ...(dtypes && { dtypes }),
        ...(tpSizes && { tpSizes }),
        ...(epSizes && { epSizes }),
      };
      const capabilities = declared?.capabilities;
      const specs = runSpecs({ seed, filter, ...(caseCount !== undefined && { count: caseCount }), quantized: quantDtypesOf(dtypes, capabilities), ...(capabilities && { declared: capabilities }) });
      // The fixtures follow the same filters: model types, dtypes (the dtype each fixture is declared under) and layouts.
      const fixtures = (golden.length ? await fixturesIn(golden) : []).filter(
        (f) => (!modelTypes || (modelTypes as readonly string[]).includes(f.modelType)) && (!dtypes || dtypes.includes(f.dtype)),
      );
      cases = [...(await goldenCases(fixtures, target, replay, undefined, layouts)), ...generatedCases(specs, target, ctx, replay)];
    }
    if (patterns.length) cases = cases.filter((c) => patterns.some((p) => matchesPattern(p, c.id)));
    if (list) {
      // The case IDs this run would check, one per line, without starting the loader (the pytest kit collects them).
      process.stdout.write(cases.filter((c) => inShard(c.id, shard)).map((c) => formatCaseId(c.id) + '\n').join(''));
      return 0;
    }
    declared ??= await declaredWorker(worker!, loaderCommand);
    const forms = declared.capabilities?.forms?.length ? parseForms(declared.capabilities.forms) : undefined;
    if (forms) target.forms = forms;
    const results = await runCases(cases, {
      jobs,
      ...(declared.capabilities && { capabilities: declared.capabilities }),
      // A case calls the loader once per rank and a few times more: bound the whole case too.
      timeoutMs: timeoutMs * 40,
      ...(expectations && { expectations }),
      ...(shard && { shard }),
      progress: createProgress(process.stderr),
    });
    // The loader's name and version: from its worker handshake, else from the metadata of its outputs.
    const run = runInfo(loaderCommand, { seed, declared, ...('metadata' in loader && { metadata: loader.metadata }) });
    return await reportResults(results, reports, { run, ...(expectations && { expectations }) });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await worker?.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
