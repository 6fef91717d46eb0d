// Proof that the suite catches real bugs: every mutant loader of the catalogue fails the
// default suite. The number of generated cases each needed is written to CAUGHT.md.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { referenceLoader } from '../../harness/loader/load.js';
import { sharedStore } from '../checkpoint-store.js';
import { memoLoader } from '../memo.js';
import type { PropertyContext } from '../properties.js';
import { DEFAULT_CASES, checkSuiteProperty, defaultSeed, suiteProperties } from '../suite-properties.js';
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
}

/** How soon the default suite catches one mutant: its properties in order, up to the first failure. */
async function hunt(m: (typeof MUTANTS)[number]): Promise<Catch> {
  const opts = { name: m.name, load: m.loader };
  let cases = 0;
  for (const p of suiteProperties(opts)) {
    // Stop at the first failure: counting, not shrinking.
    const d = await checkSuiteProperty(p, opts, { endOnFailure: true, context });
    cases += d.numRuns;
    if (d.failed) {
      const counterexample = /case (\S+)/.exec(String((d.errorInstance as Error)?.message))?.[1] ?? '';
      return { name: m.name, bug: m.bug, cases, property: p.title, counterexample };
    }
  }
  return { name: m.name, bug: m.bug, cases };
}

it('catches every mutant loader with the default settings', async () => {
  // The cases mostly wait on file I/O: hunting all mutants at once overlaps it.
  const rows = await Promise.all(MUTANTS.map(hunt));
  const table = [
    '# Mutant loaders and how soon the suite catches them',
    '',
    `Each row is a deliberately wrong loader from [catalogue.ts](catalogue.ts): the reference loader with one realistic bug of [spec/layouts.md](../../spec/layouts.md) §3 (loading) or §4 (quantized formats). "Cases" is how many generated cases the default suite (${DEFAULT_CASES} cases per property, seed ${defaultSeed()}) ran until the first failure. Written by mutants.test.ts.`,
    '',
    '| mutant | bug | cases | caught by | first failing case |',
    '| --- | --- | ---: | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.bug} | ${r.cases} | ${r.property ?? '**not caught**'} | \`${r.counterexample ?? ''}\` |`),
    '',
  ].join('\n');
  await writeFile(fileURLToPath(new URL('./CAUGHT.md', import.meta.url)), table);
  expect(rows.filter((r) => r.property === undefined).map((r) => r.name)).toEqual([]);
});
