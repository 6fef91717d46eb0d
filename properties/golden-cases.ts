// Cases from the golden fixtures that transformers wrote (golden/hf/<type>-<dtype>/): for
// each layout and a few TP/EP splits, the loader's ranks must equal the reference loader's
// bit for bit, and the forward of those ranks must reproduce transformers' own output.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caseId, formatCaseId, param, parseCaseId } from '../harness/conformance/case-id.js';
import type { CaseOutcome, ConformanceCase } from '../harness/conformance/runner.js';
import { ModelConfig } from '../harness/checkpoint/config.js';
import { MoeConformanceError } from '../harness/errors.js';
import { semanticsOf } from '../harness/layouts/registry.js';
import { referenceLoader } from '../harness/loader/load.js';
import { SafetensorsFile } from '../harness/safetensors/read.js';
import { decodeFloats } from '../harness/safetensors/codecs.js';
import type { RankTensors } from '../kernels/backend.js';
import { referenceForward } from '../kernels/moe.js';
import { diffCanonical } from './diff.js';
import { allRanks, forwardVerdict, type Target } from './properties.js';
import { LAYOUTS, type Layout, type ParallelSpec } from './spec.js';

export class GoldenFixtureError extends MoeConformanceError {}

/** The splits each fixture is loaded in, where the sizes allow them. */
export const GOLDEN_SPLITS: readonly ParallelSpec[] = [
  { tp: 1, ep: 1, placement: 'linear' },
  { tp: 2, ep: 1, placement: 'linear' },
  { tp: 1, ep: 2, placement: 'linear' },
  { tp: 2, ep: 3, placement: 'round_robin' },
];

export interface GoldenCaseSelector {
  fixtureDir: string;
  layout: Layout;
  parallel: ParallelSpec;
}

/** This package's own fixtures: golden/hf beside harness/ (or beside dist/). */
export function packageGoldenDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 3; i++, dir = dirname(dir)) if (existsSync(join(dir, 'golden', 'hf'))) return join(dir, 'golden', 'hf');
  return resolve('golden/hf');
}

/** Fixture folders in `paths`: each path is a fixture (it holds golden.json) or a folder of them. */
export function findFixtures(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (existsSync(join(p, 'golden.json'))) out.push(resolve(p));
    else if (existsSync(p) && statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) if (existsSync(join(p, name, 'golden.json'))) out.push(resolve(p, name));
    } else throw new GoldenFixtureError('not a golden fixture or a folder of them', { file: p });
  }
  return out;
}

export function goldenCaseIdText(s: GoldenCaseSelector): string {
  return formatCaseId(caseId('moe', 'golden', { fixture: basename(s.fixtureDir), layout: s.layout, tp: s.parallel.tp, ep: s.parallel.ep, placement: s.parallel.placement }));
}

/** The fixture case an ID names, looked up in `searchDirs` and this package's golden/hf; undefined for other IDs. */
export function parseGoldenCaseId(text: string, searchDirs: readonly string[] = []): GoldenCaseSelector | undefined {
  const id = parseCaseId(text);
  if (id.suite !== 'moe' || id.test !== 'golden') return undefined;
  const name = param(id, 'fixture') ?? '';
  const fixtureDir = findFixtures([...searchDirs, packageGoldenDir()]).find((d) => basename(d) === name);
  if (!fixtureDir) throw new GoldenFixtureError('no fixture of that name', { expected: 'a folder under golden/hf or --golden', found: name });
  const layout = param(id, 'layout') as Layout;
  if (!LAYOUTS.includes(layout)) throw new GoldenFixtureError('bad layout in golden case ID', { expected: LAYOUTS.join('|'), found: layout });
  const placement = param(id, 'placement');
  if (placement !== 'linear' && placement !== 'round_robin') throw new GoldenFixtureError('bad placement in golden case ID', { found: placement });
  return { fixtureDir, layout, parallel: { tp: Number(param(id, 'tp')), ep: Number(param(id, 'ep')), placement } };
}

/** Cases for every fixture in `paths` × layout × split that the fixture's sizes allow; or just `only`. */
export async function goldenCases(paths: readonly string[], target: Target, replay: (id: string) => string, only?: GoldenCaseSelector): Promise<ConformanceCase[]> {
  const selectors: GoldenCaseSelector[] = [];
  for (const fixtureDir of only ? [only.fixtureDir] : findFixtures(paths)) {
    const sem = semanticsOf(await ModelConfig.read(join(fixtureDir, 'original')));
    const fits = (p: ParallelSpec) => p.ep <= sem.experts && sem.intermediate % p.tp === 0 && sem.sharedIntermediate % p.tp === 0;
    if (only) selectors.push(only);
    else for (const layout of LAYOUTS) for (const parallel of GOLDEN_SPLITS.filter(fits)) selectors.push({ fixtureDir, layout, parallel });
  }
  return selectors.map((s) => {
    const text = goldenCaseIdText(s);
    return { id: parseCaseId(text), replay: replay(text), run: () => checkGolden(s, target) };
  });
}

async function checkGolden(s: GoldenCaseSelector, target: Target): Promise<CaseOutcome> {
  const dir = join(s.fixtureDir, s.layout);
  const sem = semanticsOf(await ModelConfig.read(dir));
  const ranks: RankTensors[] = [];
  for (const req of allRanks(s.parallel)) {
    const found = await target.loader.load(dir, req);
    const d = diffCanonical(await referenceLoader.load(dir, req), found, `TP rank ${req.tpRank}, EP rank ${req.epRank}`);
    if (d) return { status: 'fail', failure: d };
    ranks.push({ req, tensors: found });
  }
  const golden = await SafetensorsFile.open(join(s.fixtureDir, 'golden.safetensors'));
  try {
    let warned: string | undefined;
    for (const layer of sem.moeLayers) {
      const input = await golden.readTensor(`moe.${layer}.input`);
      const output = decodeFloats('F32', (await golden.readTensor(`moe.${layer}.output`)).bytes);
      const tokens = input.shape[0]!;
      const x = decodeFloats('F32', input.bytes);
      const want = referenceForward(sem, layer, ranks, x, tokens, { bound: true });
      // transformers' float32 output must lie within the float32 error bound of the exact forward.
      const v = forwardVerdict(want, output, tokens, `layer ${layer}: transformers' output (found) vs the float64 forward of the loaded ranks`);
      if (v.status === 'fail') return v;
      if (v.status === 'warn') warned = v.note;
      if (target.forward) {
        const fast = await target.forward.forward(sem, layer, ranks, x, tokens);
        const w = forwardVerdict(want, fast.output, tokens, `layer ${layer}: ${target.forward.name} vs the float64 reference`);
        if (w.status === 'fail') return w;
        if (w.status === 'warn') warned = w.note;
      }
    }
    return warned ? { status: 'warn', note: warned } : { status: 'pass' };
  } finally {
    await golden.close();
  }
}
