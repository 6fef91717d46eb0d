// moe-conformance golden [DIR...]: every golden fixture (default: the package's golden/hf)
// through the reference loader and each kernel backend, compared with transformers' record.
// Prints one row per fixture × layout × split × backend, details for rows that are not a
// clean pass; exit 0 when nothing fails (warnings are shown but pass), 1 otherwise.
import { commandFailure } from '../args.js';
import { backends as backendsOf, choices, startCommand, type CommandDef } from '../options.js';
import type { MismatchReport } from '../../../harness/compare/tolerance.js';
import type { MoeBackend } from '../../../kernels/backend.js';
import { backendNames, createBackends } from '../../../kernels/backends.js';
import { fixturesIn, LAYOUTS, runGolden, type GoldenLayout, type GoldenRow } from '../../../golden/golden.js';

const DEF: CommandDef = {
  name: 'golden',
  synopsis: ['[DIR...] [options]'],
  description: `Loads golden fixtures in each layout and split, runs every kernel backend, and compares
with the outputs transformers recorded. DIR is a folder of fixtures (<type>-<dtype>/ with
golden.safetensors) or one fixture.`,
  options: {
    backends: { args: ['A,B'], help: `kernel backends to compare: ${backendNames().join(', ')}`, default: 'all' },
    layouts: { args: ['A,B'], help: `checkpoint layouts to load: ${LAYOUTS.join(', ')}`, default: LAYOUTS.join(',') },
  },
  positionals: { name: 'fixture folders', min: 0, max: Infinity },
};

const fmt = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));

function table(rows: GoldenRow[]): string {
  const head = ['fixture', 'layout', 'split', 'backend', 'max abs', 'max rel', 'tier'];
  const cells = rows.map((r) => [r.fixture, r.layout, r.split, r.backend, fmt(r.maxAbs), fmt(r.maxRel), r.tier]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => s.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function describeReport(what: string, r: MismatchReport): string[] {
  const lines = [
    `    ${what}: ${r.tier}, ${r.mismatches}/${r.elements} beyond the strict bound (${(100 * r.share).toFixed(1)}%), ${r.failures} beyond the loose bound; ` +
      `max abs ${fmt(r.maxAbs.value)} at token ${r.maxAbs.row} column ${r.maxAbs.col} (strict bound ${fmt(r.maxAbs.bound)}), max rel ${fmt(r.maxRel.value)}`,
  ];
  if (r.perExpert.size > 0) lines.push(`      mismatching tokens per expert: ${[...r.perExpert].sort((a, b) => b[1] - a[1]).map(([e, n]) => `${e}: ${n}`).join(', ')}`);
  if (r.perRank.size > 0) lines.push(`      per rank: ${[...r.perRank].map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  if (r.tieAmbiguous.length > 0) lines.push(`      tie-ambiguous tokens (excluded from the verdict): ${r.tieAmbiguous.join(', ')}`);
  for (const note of r.notes) lines.push(`      ${note}`);
  return lines;
}

function details(rows: GoldenRow[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.tier === 'pass') continue;
    out.push(`${r.fixture} ${r.layout} ${r.split} ${r.backend}: ${r.tier}`);
    if (r.error) out.push(`    ${r.error}`);
    for (const l of r.layers) {
      if (l.output.tier !== 'pass') out.push(...describeReport(`layer ${l.layer} output`, l.output));
      if (l.routerLogits && l.routerLogits.tier !== 'pass') out.push(...describeReport(`layer ${l.layer} router logits`, l.routerLogits));
    }
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  const layouts = choices(p, 'layouts', LAYOUTS) ?? [...LAYOUTS];
  const names = backendsOf(p, 'backends', backendNames());
  p.problems.check();
  const positionals = p.positionals;

  let backends: MoeBackend[] = [];
  try {
    const fixtures = await fixturesIn(positionals);
    backends = await createBackends(names);
    const rows = await runGolden({ fixtures, backends, layouts: layouts as GoldenLayout[] });
    const count = (t: string) => rows.filter((r) => r.tier === t).length;
    const ties = rows.reduce((n, r) => n + r.layers.reduce((m, l) => m + l.output.ties.length, 0), 0);
    const tieNote = ties > 0 ? ` (${ties} token routings decided within rounding, checked as ties)` : '';
    const ran = backends.map((b) => `backend ${b.name}: ${b.describe?.() ?? 'no description'}`);
    const out = [...ran, '', table(rows), ...details(rows), `${rows.length} comparisons: ${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail${tieNote}`];
    process.stdout.write(out.join('\n') + '\n');
    return count('fail') === 0 && rows.length > 0 ? 0 : 1;
  } catch (e) {
    return commandFailure('golden', e);
  } finally {
    for (const b of backends) await b.dispose?.();
  }
}
