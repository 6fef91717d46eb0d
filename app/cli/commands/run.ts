// moe-conformance run (and `npm start`): the whole suite against the built-in reference
// loader, in process, and a kernel backend: every golden fixture in every layout and
// allowed split, and a few hundred generated cases; a progress bar, then the table.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfCommand, shellQuote } from '../args.js';
import { backends, choices, int, one, reportsOf, shardOf, startCommand, type CommandDef } from '../options.js';
import { REPORT_FORMATS } from '../../reporters/files.js';
import { Expectations } from '../../../harness/conformance/expectations.js';
import { createProgress } from '../../progress.js';
import { reportResults } from '../report-results.js';
import { runInfo } from '../../run-info.js';
import { runCases } from '../../runner.js';
import { referenceLoader } from '../../../harness/loader/load.js';
import { backendNames, createBackends } from '../../../kernels/backends.js';
import { fixturesIn } from '../../../golden/golden.js';
import { goldenCases } from '../../../properties/golden-cases.js';
import { generatedCases, quantDtypesOf, runSpecs } from '../../../properties/suite.js';
import { DTYPE_NAMES, QUANT_DTYPE_NAMES, type DtypeName } from '../../../properties/spec.js';

const DEF: CommandDef = {
  name: 'run',
  synopsis: ['[options]'],
  description: `The whole suite against the built-in reference loader (in process): every golden fixture,
in both layouts and every split it allows, generated cases of every model type, and the quantized
cases of every quantized dtype (loads with TP and EP splits, both layouts, a quantized router to refuse).`,
  options: {
    cases: { args: ['N'], help: 'generated f32/f16/bf16 cases (each quantized dtype adds its own few)', default: '300' },
    dtypes: { args: ['A,B'], help: `dtypes of the generated cases: ${DTYPE_NAMES.join(', ')}, and the quantized ${QUANT_DTYPE_NAMES.join(', ')}`, default: 'all' },
    seed: { args: ['S'], help: 'seed of the case sampler', default: '$FC_SEED or 42' },
    backend: { args: ['NAME'], help: `kernel backend whose forward is checked: ${backendNames().join(', ')}`, default: 'reference-f64' },
    golden: { args: ['DIR'], help: "golden fixtures", default: "this package's golden/" },
    jobs: { args: ['N'], help: 'cases at once, >= 1', default: '2' },
    report: { args: ['FORMAT', 'FILE'], help: `write a report; FORMAT is one of ${REPORT_FORMATS.join(', ')}`, repeatable: true },
    expectations: { args: ['FILE'], help: 'lines "ID-or-pattern fail|skip # reason"' },
    shard: { args: ['i/n'], help: 'run the i-th of n disjoint parts (1 <= i <= n)' },
  },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  const reports = reportsOf(p);
  const caseCount = int(p, 'cases', 300, 1);
  const jobs = int(p, 'jobs', 2, 1);
  const seed = int(p, 'seed', Number(process.env.FC_SEED ?? 42));
  const shard = shardOf(p);
  const [backend] = backends(p, 'backend', ['reference-f64']);
  const golden = one(p, 'golden');
  const dtypes = choices<DtypeName>(p, 'dtypes', [...DTYPE_NAMES, ...QUANT_DTYPE_NAMES]);
  const expectationsFile = one(p, 'expectations');
  p.problems.check();
  const [forward] = await createBackends([backend!]);
  const expectations = expectationsFile ? await Expectations.read(expectationsFile) : undefined;
  const target = { loader: referenceLoader, forward: forward! };
  const workDir = await mkdtemp(join(tmpdir(), 'moe-run-'));
  const replay = (id: string) => `${selfCommand()} check --loader 'moe-conformance load' --case ${shellQuote(id)}`;
  try {
    const fixtures = await fixturesIn(golden ? [golden] : []);
    const cases = [
      ...(await goldenCases(fixtures, target, replay)),
      // The reference loader reads every quantized format: it is given each one's cases (or those --dtypes names).
      ...generatedCases(runSpecs({ seed, ...(dtypes && { filter: { dtypes } }), ...(one(p, 'cases') === undefined ? { base: caseCount } : { count: caseCount }), quantized: quantDtypesOf(dtypes ?? QUANT_DTYPE_NAMES, undefined) }), target, { workDir }, replay),
    ];
    const results = await runCases(cases, {
      jobs,
      timeoutMs: 600_000,
      ...(expectations && { expectations }),
      ...(shard && { shard }),
      progress: createProgress(process.stderr),
    });
    const preface = `loader: reference (in process); kernel backend ${forward!.name}: ${forward!.describe?.() ?? 'no description'}\n`;
    return await reportResults(results, reports, { preface, run: runInfo(`reference loader (in process), kernel backend ${forward!.name}`, { seed }), ...(expectations && { expectations }) });
  } finally {
    await forward!.dispose?.();
    await rm(workDir, { recursive: true, force: true });
  }
}
