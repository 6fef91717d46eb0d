// moe-conformance run (and `npm start`): the whole suite against the built-in reference
// loader, in process, and a kernel backend: every golden fixture in every layout and
// allowed split, and a few hundred generated cases; a progress bar, then the table.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendOptions, intOption, parse, reportOptions, shellQuote } from '../args.js';
import { Expectations } from '../../../harness/conformance/expectations.js';
import { createProgress } from '../../progress.js';
import { reportResults } from '../report-results.js';
import { runInfo } from '../../run-info.js';
import { parseShard, runCases } from '../../runner.js';
import { referenceLoader } from '../../../harness/loader/load.js';
import { backendNames, createBackends } from '../../../kernels/backends.js';
import { fixturesIn } from '../../../golden/golden.js';
import { goldenCases } from '../../../properties/golden-cases.js';
import { generatedCases, sampleSpecs } from '../../../properties/suite.js';

const USAGE = `usage: moe-conformance run [options]

The whole suite against the built-in reference loader (in process): every golden fixture,
in both layouts and every split it allows, and generated cases of all 20 model types.

options:
  --cases N               generated cases (default 300)
  --seed S                seed of the case sampler (default $FC_SEED or 42)
  --backend NAME          kernel backend whose forward is checked (default reference-f64;
                          one of ${backendNames().join(', ')})
  --golden DIR            fixtures (default: this package's golden/hf)
  --jobs N                cases at once (default 2)
  --report FORMAT FILE    junit | json | html; repeatable
  --expectations FILE     lines "ID-or-pattern fail|skip # reason"
  --shard i/n             run the i-th of n disjoint parts`;

export async function run(argv: string[]): Promise<number> {
  const { rest, reports } = reportOptions(argv);
  const { values } = parse(rest, {
    cases: { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    golden: { type: 'string' },
    jobs: { type: 'string' },
    expectations: { type: 'string' },
    shard: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [forward] = await createBackends(backendOptions([values.backend ?? 'reference-f64']));
  const seed = intOption(values.seed, 'seed', Number(process.env.FC_SEED ?? 42));
  const expectations = values.expectations ? await Expectations.read(values.expectations) : undefined;
  const shard = values.shard ? parseShard(values.shard) : undefined;
  const target = { loader: referenceLoader, forward: forward! };
  const workDir = await mkdtemp(join(tmpdir(), 'moe-run-'));
  const replay = (id: string) => `moe-conformance check --loader 'moe-conformance load' --case ${shellQuote(id)}`;
  try {
    const fixtures = await fixturesIn(values.golden ? [values.golden] : []);
    const cases = [
      ...(await goldenCases(fixtures, target, replay)),
      ...generatedCases(sampleSpecs(intOption(values.cases, 'cases', 300), seed), target, { workDir }, replay),
    ];
    const results = await runCases(cases, {
      jobs: intOption(values.jobs, 'jobs', 2),
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
