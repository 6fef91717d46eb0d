// moe-conformance check: the conformance suite against a loader command (spec §2). It
// generates checkpoints into a temporary folder, calls the command once per rank, checks
// everything spec §3 asks, and reports. Exit 0 only if every case passed.
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { intOption, listOption, parse, reportOptions, shellQuote, UsageError } from '../args.js';
import { matchesPattern, parseCasePattern } from '../../../harness/conformance/case-id.js';
import { commandLoader, killRunningLoaders } from '../../../harness/protocol/command-loader.js';
import { Expectations } from '../../../harness/conformance/expectations.js';
import { createProgress } from '../../progress.js';
import type { ReportFormat } from '../../reporters/files.js';
import { mergeResults, readResults } from '../../reporters/json.js';
import { reportResults } from '../report-results.js';
import { parseShard, runCases } from '../../runner.js';
import type { ConformanceCase } from '../../../harness/conformance/results.js';
import { fixturesIn } from '../../../golden/golden.js';
import { goldenCases, parseGoldenCaseId } from '../../../properties/golden-cases.js';
import { generatedCases, sampleSpecs } from '../../../properties/suite.js';
import { DTYPE_NAMES, LAYOUTS, parseSpec, type CaseSpec, type DtypeName, type Layout } from '../../../properties/spec.js';
import { ALL_MODEL_TYPES } from '../../../properties/arbitraries/models.js';
import { FormDeclarationError, parseForms, type FormSet } from '../../../harness/canonical/forms.js';

const USAGE = `usage: moe-conformance check --loader "CMD ARGS" [options]
       moe-conformance check --merge A.json B.json ... [--report FORMAT FILE ...]

Runs the conformance suite against a loader command. The harness appends
--checkpoint DIR --out FILE --tp-size T --tp-rank r --ep-size P --ep-rank q --ep-placement X
(spec §2). "moe-conformance ..." names this package's own CLI.

options:
  --cases N               generated cases (default 100)
  --seed S                seed of the case sampler (default $FC_SEED or 42)
  --model-types A,B       model types (default all 20)
  --layouts original,fused
  --dtypes f32,f16,bf16
  --tp 1,2,4              TP sizes to try (default 1,2,3,4)
  --ep 1,2,3              EP sizes to try (default 1,2,3,4)
  --forms A,B             engine forms the loader emits (spec §5): w31, shared-replicated,
                          shared-expert-slots, eplb, transposed, pad-ir-N; its ranks are
                          mapped to the canonical form before comparing
  --timeout SECONDS       per loader call (default 60)
  --jobs N                cases at once (default 2)
  --golden DIR ...        golden fixture folders, or folders holding them
  --report FORMAT FILE    junit | json | html; repeatable
  --keep-failures DIR     keep each failing case's checkpoint and loader outputs
  --expectations FILE     lines "ID-or-pattern fail|skip # reason"
  --shard i/n             run the i-th of n disjoint parts
  --case ID               replay one case (repeatable); no sampling. With a * (a pattern
                          like 'moe:load:model=gpt_oss;*'), run only the sampled cases it matches
  --merge FILE ...        merge JSON results of --shard runs instead of running`;

/** The multi-word options: `--report FORMAT FILE` and the path lists of `--golden` and `--merge`. */
function extractMultiWord(argv: string[]): { rest: string[]; reports: Array<[ReportFormat, string]>; golden: string[]; merge: string[] } {
  const { rest: afterReports, reports } = reportOptions(argv);
  const rest: string[] = [];
  const golden: string[] = [];
  const merge: string[] = [];
  for (let i = 0; i < afterReports.length; i++) {
    const a = afterReports[i]!;
    if (a === '--golden' || a === '--merge') {
      const into = a === '--golden' ? golden : merge;
      let j = i + 1;
      while (j < afterReports.length && !afterReports[j]!.startsWith('--')) into.push(afterReports[j++]!);
      if (j === i + 1) throw new UsageError(`${a} takes at least one path`);
      i = j - 1;
    } else rest.push(a);
  }
  return { rest, reports, golden, merge };
}

/** `--forms w31,eplb`: a declaration error (unknown form, two that exclude each other) is a usage error. */
function formsOption(value: string): FormSet {
  try {
    return parseForms(listOption(value, []));
  } catch (e) {
    if (e instanceof FormDeclarationError) throw new UsageError(`--forms: ${e.message}`);
    throw e;
  }
}

function sizes(value: string | undefined, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  return listOption(value, []).map((v) => intOption(v, name, 0)).filter((n) => n >= 1);
}

function oneOfList<T extends string>(value: string | undefined, allowed: readonly T[], name: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = listOption(value, []);
  for (const it of items) if (!(allowed as readonly string[]).includes(it)) throw new UsageError(`--${name}: unknown ${JSON.stringify(it)} (one of ${allowed.join(', ')})`);
  return items as T[];
}

export async function run(argv: string[]): Promise<number> {
  const { rest, reports, golden, merge } = extractMultiWord(argv);
  const { values } = parse(rest, {
    loader: { type: 'string' },
    cases: { type: 'string' },
    seed: { type: 'string' },
    'model-types': { type: 'string' },
    layouts: { type: 'string' },
    dtypes: { type: 'string' },
    tp: { type: 'string' },
    ep: { type: 'string' },
    timeout: { type: 'string' },
    forms: { type: 'string' },
    jobs: { type: 'string' },
    'keep-failures': { type: 'string' },
    expectations: { type: 'string' },
    shard: { type: 'string' },
    case: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (merge.length) {
    const sets = await Promise.all(merge.map(async (file) => ({ file, results: await readResults(file) })));
    return reportResults(mergeResults(sets), reports);
  }
  if (values.loader === undefined) throw new UsageError('--loader "CMD ARGS" is required (or --merge)');
  const loaderCommand = values.loader;
  const timeoutMs = 1000 * intOption(values.timeout, 'timeout', 60);
  if (timeoutMs === 0) throw new UsageError('--timeout must be at least 1 second');
  const seed = intOption(values.seed, 'seed', Number(process.env.FC_SEED ?? 42));
  const modelTypes = oneOfList(values['model-types'], ALL_MODEL_TYPES, 'model-types');
  const layouts = oneOfList<Layout>(values.layouts, LAYOUTS, 'layouts');
  const dtypes = oneOfList<DtypeName>(values.dtypes, DTYPE_NAMES, 'dtypes');
  const expectations = values.expectations ? await Expectations.read(values.expectations) : undefined;
  const shard = values.shard ? parseShard(values.shard) : undefined;
  const keepFailures = values['keep-failures'] ? resolve(values['keep-failures']) : undefined;
  const forms = values.forms !== undefined ? formsOption(values.forms) : undefined;

  const workDir = await mkdtemp(join(tmpdir(), 'moe-check-'));
  const loader = commandLoader(loaderCommand, { timeoutMs, workDir });
  const target = { loader, ...(forms && { forms }) };
  // Loaders run in their own process groups: on Ctrl-C or kill, end them and the temporary folder too.
  const interrupted = (signal: NodeJS.Signals) => {
    killRunningLoaders();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const goldenArgs = golden.length ? ` --golden ${golden.map((g) => shellQuote(resolve(g))).join(' ')}` : '';
  const formsArg = forms ? ` --forms ${forms.names.join(',')}` : '';
  const replay = (id: string) => `moe-conformance check --loader ${shellQuote(loaderCommand)}${formsArg} --case ${shellQuote(id)}${id.startsWith('moe:golden:') ? goldenArgs : ''}`;
  try {
    const ctx = { workDir, ...(keepFailures && { keepFailures }) };
    let cases: ConformanceCase[];
    const patterns = (values.case ?? []).filter((c) => c.includes('*')).map(parseCasePattern);
    const ids = (values.case ?? []).filter((c) => !c.includes('*'));
    if (ids.length) {
      const specs: CaseSpec[] = [];
      cases = [];
      for (const id of ids) {
        const g = await parseGoldenCaseId(id, golden);
        if (g) cases.push(...(await goldenCases([], target, replay, g)));
        else specs.push(parseSpec(id));
      }
      cases.push(...generatedCases(specs, target, ctx, replay));
    } else {
      const specs = sampleSpecs(intOption(values.cases, 'cases', 100), seed, {
        ...(modelTypes && { modelTypes }),
        ...(layouts && { layouts }),
        ...(dtypes && { dtypes }),
        ...(values.tp !== undefined && { tpSizes: sizes(values.tp, 'tp') }),
        ...(values.ep !== undefined && { epSizes: sizes(values.ep, 'ep') }),
      });
      // The fixtures follow the same filters: model types, dtypes (the `-bf16` of their name) and layouts.
      const fixtures = (golden.length ? await fixturesIn(golden) : []).filter(
        (f) => (!modelTypes || modelTypes.includes(f.modelType)) && (!dtypes || dtypes.some((d) => f.name.endsWith(`-${d}`))),
      );
      cases = [...(await goldenCases(fixtures, target, replay, undefined, layouts)), ...generatedCases(specs, target, ctx, replay)];
    }
    if (patterns.length) cases = cases.filter((c) => patterns.some((p) => matchesPattern(p, c.id)));
    const results = await runCases(cases, {
      jobs: intOption(values.jobs, 'jobs', 2),
      // A case calls the loader once per rank and a few times more: bound the whole case too.
      timeoutMs: timeoutMs * 40,
      ...(expectations && { expectations }),
      ...(shard && { shard }),
      progress: createProgress(process.stderr),
    });
    return await reportResults(results, reports, { ...(expectations && { expectations }) });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await rm(workDir, { recursive: true, force: true });
  }
}
