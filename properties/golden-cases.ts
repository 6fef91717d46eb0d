// Cases from the golden fixtures that transformers wrote (golden/hf/<type>-<dtype>/): for
// each layout and each TP/EP split the fixture allows, the loader's ranks must equal the
// reference loader's bit for bit, and the forward of those ranks must reproduce
// transformers' own output (golden/golden.ts does the comparison).
import { caseId, formatCaseId, param, parseCaseId } from '../harness/conformance/case-id.js';
import { failureOf, type CaseOutcome, type ConformanceCase } from '../harness/conformance/results.js';
import { ModelConfig } from '../harness/checkpoint/config.js';
import { MoeConformanceError } from '../harness/errors.js';
import { moeLayoutsOf, semanticsOf } from '../harness/quant/layout.js';
import { inFormOf } from '../harness/quant/dequantize.js';
import { referenceLoader } from '../harness/loader/load.js';
import { compareLayer, defaultGoldenRoots, DEFAULT_SPLITS, fixturesIn, goldenInputs, readGolden, splitAllowed, type Fixture, type GoldenLayout } from '../golden/golden.js';
import { referenceBackend, referenceForward } from '../kernels/moe.js';
import { loadRanks } from '../kernels/ranks.js';
import { diffCanonical, notingSlot } from './diff.js';
import { diagnoseCanonical } from '../harness/compare/diagnose.js';
import { slotOrigin } from '../harness/canonical/forms.js';
import { WHOLE } from '../harness/tensor.js';
import { callOf, canonicalRanks, diagnosed, formsNote, observed, rankName, stderrTail, type Target } from './properties.js';
import type { ParallelSpec } from './spec.js';
import type { CaseNeeds } from '../harness/conformance/capabilities.js';

export class GoldenCaseError extends MoeConformanceError {}

export interface GoldenCaseSelector {
  fixture: Fixture;
  layout: GoldenLayout;
  parallel: ParallelSpec;
}

export function goldenCaseIdText(s: GoldenCaseSelector): string {
  return formatCaseId(caseId('moe', 'golden', { fixture: s.fixture.name, layout: s.layout, tp: s.parallel.tp, ep: s.parallel.ep, placement: s.parallel.placement }));
}

/** The fixture case an ID names, looked up under `roots` and this package's fixtures; undefined for other IDs. */
export async function parseGoldenCaseId(text: string, roots: readonly string[] = []): Promise<GoldenCaseSelector | undefined> {
  const id = parseCaseId(text);
  if (id.suite !== 'moe' || id.test !== 'golden') return undefined;
  const name = param(id, 'fixture');
  const fixture = (await fixturesIn([...roots, ...defaultGoldenRoots()])).find((f) => f.name === name);
  if (!fixture) throw new GoldenCaseError('no golden fixture of that name', { expected: 'a folder under golden/hf or --golden', found: name });
  const layout = param(id, 'layout');
  if (!fixture.layouts.some((l) => l.layout === layout)) throw new GoldenCaseError('the fixture has no such layout', { expected: fixture.layouts.map((l) => l.layout).join('|'), found: layout });
  const placement = param(id, 'placement');
  const tp = Number(param(id, 'tp'));
  const ep = Number(param(id, 'ep'));
  if ((placement !== 'linear' && placement !== 'round_robin') || !Number.isSafeInteger(tp) || !Number.isSafeInteger(ep)) {
    throw new GoldenCaseError('bad parallel setting in a golden case ID', { expected: 'tp=N;ep=N;placement=linear|round_robin', found: text });
  }
  return { fixture, layout: layout as GoldenLayout, parallel: { tp, ep, placement } };
}

/** Every fixture × layout (of `layouts`, default both) × allowed split, or just `only`. */
export async function goldenCases(
  fixtures: readonly Fixture[], target: Target, replay: (id: string) => string, only?: GoldenCaseSelector, layouts?: readonly GoldenLayout[],
): Promise<ConformanceCase[]> {
  const selectors: GoldenCaseSelector[] = only ? [only] : [];
  for (const fixture of only ? [] : fixtures) {
    for (const { layout, dir } of fixture.layouts.filter((l) => !layouts || layouts.includes(l.layout))) {
      const sem = semanticsOf(await ModelConfig.read(dir));
      for (const parallel of DEFAULT_SPLITS.filter((s) => splitAllowed(sem, s))) selectors.push({ fixture, layout, parallel });
    }
  }
  return selectors.map((s) => {
    const text = goldenCaseIdText(s);
    return { id: parseCaseId(text), replay: replay(text), needs: goldenNeeds(s), run: () => checkGolden(s, target) };
  });
}

/** What a golden case asks of a loader: the fixture's model type and dtype, the layout, the split. */
function goldenNeeds(s: GoldenCaseSelector): CaseNeeds {
  return { modelType: s.fixture.modelType, layouts: [s.layout], dtype: s.fixture.dtype, tp: s.parallel.tp, ep: s.parallel.ep, placement: s.parallel.placement };
}

async function checkGolden(s: GoldenCaseSelector, target: Target): Promise<CaseOutcome> {
  const stderr: string[] = [];
  let outcome: CaseOutcome;
  try {
    outcome = await goldenOutcome(s, observed(target, () => s.layout, stderr));
  } catch (e) {
    // A loader error names the call (rank, layout) it came from.
    outcome = { status: 'fail', failure: { ...failureOf(e), ...callOf(e) } };
  }
  outcome = diagnosed(outcome);
  const tail = stderrTail(stderr);
  return tail ? { ...outcome, stderr: tail } : outcome;
}

async function goldenOutcome(s: GoldenCaseSelector, target: Target): Promise<CaseOutcome> {
  const dir = s.fixture.layouts.find((l) => l.layout === s.layout)!.dir;
  const config = await ModelConfig.read(dir);
  const sem = semanticsOf(config);
  // A quantized fixture's ranks are compared in the form the loader gave (spec §4): its stored bytes and scales, or the harness's own dequantization.
  const quant = moeLayoutsOf(config).dims.quant;
  const ranks = canonicalRanks(await loadRanks(target.loader, dir, s.parallel), target.forms, sem);
  if (!Array.isArray(ranks)) return ranks;
  for (const r of ranks) {
    const stored = await referenceLoader.load(dir, r.req);
    const expected = inFormOf(stored, r.tensors, quant, r.req);
    const d = notingSlot(diffCanonical(expected, r.tensors, `${rankName(r.req)}${formsNote(target.forms)}`), expected, r.tensors, (t, slot) => slotOrigin(r, t, slot));
    // The whole reference is read only when there is something to diagnose.
    if (d) {
      const whole = inFormOf(await referenceLoader.load(dir, WHOLE), r.tensors, quant, WHOLE);
      const context = { req: r.req, whole, ...(quant && { quantized: quant.method, stored: { scheme: quant, tensors: stored } }) };
      return { status: 'fail', failure: { ...d, rank: rankName(r.req), layout: s.layout, diagnosis: diagnoseCanonical(expected, r.tensors, context) } };
    }
  }
  const backend = target.forward ?? referenceBackend;
  let warned: string | undefined;
  for (const g of await readGolden(s.fixture, sem)) {
    const reference = referenceForward(sem, g.layer, ranks, g.input, g.tokens, { bound: true, inputs: goldenInputs(g) });
    const c = await compareLayer(sem, ranks, g, backend, reference);
    for (const [what, r] of [['output', c.output], ['router logits', c.routerLogits]] as const) {
      if (!r || r.tier === 'pass') continue;
      const summary = `layer ${g.layer} ${what}: ${backend.name} forward of the loaded ranks vs transformers: max abs error ${r.maxAbs.value} at token ${r.maxAbs.row}, column ${r.maxAbs.col} (bound ${r.maxAbs.bound}); ${r.mismatches} beyond strict, ${r.failures} beyond loose${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`;
      if (r.tier === 'fail') return { status: 'fail', failure: { message: summary } };
      warned = summary;
    }
  }
  return warned ? { status: 'warn', note: warned } : { status: 'pass' };
}
