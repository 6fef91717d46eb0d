// moe-conformance check: the conformance suite against a loader command (spec §2). It
// generates checkpoints into a temporary folder, calls the command once per rank, checks
// everything spec §3 asks, and reports. Exit 0 only if every case passed.
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { selfCommand, shellQuote } from '../args.js';
import { all, choices, int, ints, one, reportsOf, shardOf, startCommand, type CommandDef } from '../options.js';
import { matchesPattern, parseCasePattern } from '../../../harness/conformance/case-id.js';
import { commandLoader, killRunningLoaders } from '../../../harness/protocol/command-loader.js';
import { Expectations } from '../../../harness/conformance/expectations.js';
import { createProgress } from '../../progress.js';
import { REPORT_FORMATS } from '../../reporters/files.js';
import { mergeResults, parseRunInfo, readResults } from '../../reporters/json.js';
import { runInfo } from '../../run-info.js';
import { reportResults } from '../report-results.js';
import { runCases } from '../../runner.js';
import type { ConformanceCase } from '../../../harness/conformance/results.js';
import { fixturesIn } from '../../../golden/golden.js';
import { goldenCases, parseGoldenCaseId } from '../../../properties/golden-cases.js';
import { generatedCases, sampleSpecs } from '../../../properties/suite.js';
import { DTYPE_NAMES, LAYOUTS, parseSpec, type CaseSpec, type DtypeName, type Layout } from '../../../properties/spec.js';
import { ALL_MODEL_TYPES } from '../../../properties/arbitraries/models.js';

const DEF: CommandDef = {
  name: 'check',
  synopsis: ['--loader "CMD ARGS" [options]', '--merge A.json B.json ... [--report FORMAT FILE ...]'],
  description: `Runs the conformance suite against a loader command. The harness appends
--checkpoint DIR --out FILE --tp-size T --tp-rank r --ep-size P --ep-rank q --ep-placement X
(spec §2). "moe-conformance ..." names this package's own CLI, run directly by node (through
npx it would cost about a second more per call).`,
  options: {
    loader: { args: ['"CMD ARGS"'], help: 'the loader command (required unless --merge)' },
    cases: { args: ['N'], help: 'generated cases; the first ones load every model type in each of its layouts and refuse a broken checkpoint of each type (the report says what ran)', default: '100' },
    seed: { args: ['S'], help: 'seed of the case sampler', default: '$FC_SEED or 42' },
    'model-types': { args: ['A,B'], help: 'model types', default: 'all' },
    layouts: { args: ['A,B'], help: `layouts: ${LAYOUTS.join(', ')}`, default: 'both' },
    dtypes: { args: ['A,B'], help: `dtypes: ${DTYPE_NAMES.join(', ')}`, default: 'all' },
    tp: { args: ['1,2,4'], help: 'TP sizes to try, each >= 1', default: '1,2,3,4' },
    ep: { args: ['1,2,3'], help: 'EP sizes to try, each >= 1', default: '1,2,3,4' },
    timeout: { args: ['SECONDS'], help: 'per loader call, >= 1', default: '60' },
    jobs: { args: ['N'], help: 'cases at once, >= 1', default: '2' },
    golden: { args: ['DIR...'], help: 'golden fixture folders, or folders holding them (the package ships golden/hf)', default: 'none' },
    report: { args: ['FORMAT', 'FILE'], help: `write a report; FORMAT is one of ${REPORT_FORMATS.join(', ')}`, repeatable: true },
    'keep-failures': { args: ['DIR'], help: "keep each failing or inconclusive case's checkpoints, loader and reference outputs and a reason.txt, one folder per case" },
    expectations: { args: ['FILE'], help: 'lines "ID-or-pattern fail|skip [reason=/REGEX/] [diagnosis=KIND] # reason"' },
    shard: { args: ['i/n'], help: 'run the i-th of n disjoint parts (1 <= i <= n)' },
    case: { args: ['ID'], help: "replay one case; no sampling. With a * (a pattern like 'moe:load:model=gpt_oss;*'), run only the sampled cases it matches", repeatable: true },
    merge: { args: ['FILE...'], help: 'merge JSON results of --shard runs instead of running' },
  },
};

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
    const run = parseRunInfo(await readFile(merge[0]!, 'utf8'));
    return reportResults(mergeResults(sets), reports, { ...(run && { run }) });
  }
  const loaderCommand = one(p, 'loader') ?? '';
  if (!one(p, 'loader')) p.problems.add('--loader "CMD ARGS" is required (or --merge)');
  const timeoutMs = 1000 * int(p, 'timeout', 60, 1);
  const seed = int(p, 'seed', Number(process.env.FC_SEED ?? 42));
  const modelTypes = choices(p, 'model-types', ALL_MODEL_TYPES);
  const layouts = choices<Layout>(p, 'layouts', LAYOUTS);
  const dtypes = choices<DtypeName>(p, 'dtypes', DTYPE_NAMES);
  const tpSizes = ints(p, 'tp');
  const epSizes = ints(p, 'ep');
  const caseCount = int(p, 'cases', 100, 1);
  const jobs = int(p, 'jobs', 2, 1);
  const shard = shardOf(p);
  const caseArgs = all(p, 'case');
  const expectationsFile = one(p, 'expectations');
  const keepFailures = one(p, 'keep-failures');
  p.problems.check();
  const expectations = expectationsFile ? await Expectations.read(expectationsFile) : undefined;
  const workDir = await mkdtemp(join(tmpdir(), 'moe-check-'));
  const loader = commandLoader(loaderCommand, { timeoutMs, workDir });
  // Loaders run in their own process groups: on Ctrl-C or kill, end them and the temporary folder too.
  const interrupted = (signal: NodeJS.Signals) => {
    killRunningLoaders();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const goldenArgs = golden.length ? ` --golden ${golden.map((g) => shellQuote(resolve(g))).join(' ')}` : '';
  const replay = (id: string) => `${selfCommand()} check --loader ${shellQuote(loaderCommand)} --case ${shellQuote(id)}${id.startsWith('moe:golden:') ? goldenArgs : ''}`;
  try {
    const ctx = { workDir, ...(keepFailures && { keepFailures: resolve(keepFailures) }) };
    let cases: ConformanceCase[];
    const patterns = caseArgs.filter((c) => c.includes('*')).map(parseCasePattern);
    const ids = caseArgs.filter((c) => !c.includes('*'));
    if (ids.length) {
      const specs: CaseSpec[] = [];
      cases = [];
      for (const id of ids) {
        const g = await parseGoldenCaseId(id, golden);
        if (g) cases.push(...(await goldenCases([], { loader }, replay, g)));
        else specs.push(parseSpec(id));
      }
      cases.push(...generatedCases(specs, { loader }, ctx, replay));
    } else {
      const specs = sampleSpecs(caseCount, seed, {
        ...(modelTypes && { modelTypes }),
        ...(layouts && { layouts }),
        ...(dtypes && { dtypes }),
        ...(tpSizes && { tpSizes }),
        ...(epSizes && { epSizes }),
      });
      // The fixtures follow the same filters: model types, dtypes (the `-bf16` of their name) and layouts.
      const fixtures = (golden.length ? await fixturesIn(golden) : []).filter(
        (f) => (!modelTypes || modelTypes.includes(f.modelType)) && (!dtypes || dtypes.some((d) => f.name.endsWith(`-${d}`))),
      );
      cases = [...(await goldenCases(fixtures, { loader }, replay, undefined, layouts)), ...generatedCases(specs, { loader }, ctx, replay)];
    }
    if (patterns.length) cases = cases.filter((c) => patterns.some((p) => matchesPattern(p, c.id)));
    const results = await runCases(cases, {
      jobs,
      // A case calls the loader once per rank and a few times more: bound the whole case too.
      timeoutMs: timeoutMs * 40,
      ...(expectations && { expectations }),
      ...(shard && { shard }),
      progress: createProgress(process.stderr),
    });
    const run = runInfo(loaderCommand, { seed, declared: loader.declared });
    return await reportResults(results, reports, { run, ...(expectations && { expectations }) });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await rm(workDir, { recursive: true, force: true });
  }
}
