// Proof that the suite catches real bugs: every mutant loader (and wrong forward) of the
// catalogue fails the default suite, and the first failure's diagnosis names the mutant's
// own kind. The number of generated cases each needed, and the diagnosis, go to CAUGHT.md.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { referenceLoader } from '../../harness/loader/load.js';
import { sharedStore } from '../checkpoint-store.js';
import { memoLoader } from '../memo.js';
import type { PropertyContext } from '../properties.js';
import { ConformanceCaseFailure, DEFAULT_CASES, checkSuiteProperty, defaultSeed, suiteProperties } from '../suite-properties.js';
import type { Diagnosis } from '../../harness/compare/diagnose.js';
import { MUTANTS } from './catalogue.js';

// Every mutant runs over the same cases: write each checkpoint, and load each expected rank, once.
let root: string;
let context: Pick<PropertyContext, 'checkpoints' | 'reference'>;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'moe-mutants-'));
  context = { checkpoints: sharedStore(root), reference: memoLoader(referenceLoader, 256) };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Catch {
  name: string;
  bug: string;
  cases: number;
  property?: string;
  counterexample?: string;
  expected: string;
  diagnosis?: Diagnosis[];
  /** Settings other than the default, and why. */
  suite?: string;
}

/** How soon the default suite catches one mutant: its properties in order, up to the first failure. */
async function hunt(m: (typeof MUTANTS)[number]): Promise<Catch> {
  const found = await huntDefault(m);
  return m.suite ? { ...found, suite: `${m.suite.capabilities.modelTypes.join(', ')} only, ${m.suite.cases} cases per property: ${m.suite.why}` } : found;
}

async function huntDefault(m: (typeof MUTANTS)[number]): Promise<Catch> {
  const opts = { name: m.name, load: m.loader, ...(m.forward && { forward: m.forward }), ...(m.suite && { capabilities: m.suite.capabilities, cases: m.suite.cases }) };
  let cases = 0;
  for (const p of suiteProperties(opts)) {
    // Stop at the first failure: counting, not shrinking.
    const d = await checkSuiteProperty(p, opts, { endOnFailure: true, context });
    cases += d.numRuns;
    if (d.failed) {
      const counterexample = /case (\S+)/.exec(String((d.errorInstance as Error)?.message))?.[1] ?? '';
      const failure = d.errorInstance instanceof ConformanceCaseFailure ? d.errorInstance.failure : undefined;
      return { name: m.name, bug: m.bug, cases, property: p.title, counterexample, expected: m.diagnosis, ...(failure?.diagnosis && { diagnosis: failure.diagnosis }) };
    }
  }
  return { name: m.name, bug: m.bug, cases, expected: m.diagnosis };
}

it('catches every mutant loader with the default settings', async () => {
  // The cases mostly wait on file I/O: hunting all mutants at once overlaps it.
  const rows = await Promise.all(MUTANTS.map(hunt));
  const table = [
    '# Mutant loaders and how soon the suite catches them',
    '',
    `Each row is a deliberately wrong loader from [catalogue.ts](catalogue.ts): the reference loader with one realistic bug of [spec/layouts.md](../../spec/layouts.md) §3 (loading) or §4 (quantized formats), or (\`forward-*\`) the reference forward with one routing mistake. "Cases" is how many generated cases the default suite (${DEFAULT_CASES} cases per property, seed ${defaultSeed()}) ran until the first failure; "diagnosis" is the first entry of that failure's \`failure.diagnosis\` (harness/compare/diagnose.ts), which must be the mutant's own kind. Written by mutants.test.ts.`,
    '',
    '| mutant | bug | cases | caught by | diagnosis | first failing case |',
    '| --- | --- | ---: | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.bug} | ${r.cases}${r.suite ? ` (${r.suite})` : ''} | ${r.property ?? '**not caught**'} | ${diagnosisCell(r)} | \`${r.counterexample ?? ''}\` |`),
    '',
  ].join('\n');
  await writeFile(fileURLToPath(new URL('./CAUGHT.md', import.meta.url)), table);
  expect(rows.filter((r) => r.property === undefined).map((r) => r.name)).toEqual([]);
  // Each mutant's first failure is diagnosed with its own kind, first, and never as unknown.
  expect(rows.map((r) => [r.name, r.diagnosis?.[0]?.kind])).toEqual(rows.map((r) => [r.name, r.expected]));
  expect(rows.filter((r) => r.diagnosis?.some((x) => x.kind === 'unknown')).map((r) => r.name)).toEqual([]);
}, 900_000); // many mutants × the default suite: minutes on a 2-core machine; the bound keeps a hang from passing unnoticed

/** The first diagnosis of the first failing case: kind, and where the kind came with a detail, the detail. */
function diagnosisCell(r: Catch): string {
  const d = r.diagnosis?.[0];
  if (!d) return '**none**';
  const text = `**${d.kind}**${d.tensor ? ` ${d.tensor}` : ''}: ${d.detail}`.replace(/\|/g, '\\|');
  const more = (r.diagnosis?.length ?? 0) - 1;
  return `${text}${more > 0 ? ` (+${more} more)` : ''}${d.kind === r.expected ? '' : ` (expected ${r.expected})`}`;
}
