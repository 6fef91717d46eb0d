// The floors of the code base (README "Where things are"): each module may import only from
// its own floor or a lower one. This test reads every source file's relative imports and
// fails on an upward one, naming the file, the import and both floors.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Lowest first. A path belongs to the first floor whose prefix it starts with. */
export const FLOORS: ReadonlyArray<{ floor: string; paths: string[] }> = [
  { floor: 'core', paths: ['harness/errors.ts'] },
  { floor: 'format', paths: ['harness/safetensors/', 'harness/tensor.ts', 'harness/tensor-ops.ts'] },
  { floor: 'checkpoint', paths: ['harness/checkpoint/'] },
  { floor: 'layouts', paths: ['harness/layouts/'] },
  { floor: 'canonical', paths: ['harness/canonical/'] },
  { floor: 'quant', paths: ['harness/quant/'] },
  { floor: 'loader', paths: ['harness/loader/', 'harness/writer/'] },
  { floor: 'compare', paths: ['harness/compare/'] },
  { floor: 'protocol', paths: ['harness/protocol/', 'harness/conformance/'] },
  { floor: 'kernels', paths: ['kernels/'] },
  { floor: 'golden', paths: ['golden/golden.ts'] },
  { floor: 'properties', paths: ['properties/'] },
  { floor: 'app', paths: ['app/'] },
];

export function floorOf(path: string): number {
  const i = FLOORS.findIndex((f) => f.paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p)));
  return i;
}

/** Source files (not tests, not test helpers) under the floors' folders. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (e.name !== 'test' && e.name !== 'node_modules') out.push(...sources(rel));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
      out.push(rel);
    }
  }
  return out;
}

export function relativeImports(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) specs.push(m[1]!);
  return specs;
}

/** Every import that points to a higher floor, as `file -> target (floor a < floor b)`. */
export function upwardImports(files: ReadonlyArray<{ path: string; text: string }>): string[] {
  const bad: string[] = [];
  for (const { path, text } of files) {
    const from = floorOf(path);
    for (const spec of relativeImports(text)) {
      const target = relative(ROOT, resolve(ROOT, dirname(path), spec)).replace(/\.js$/, '.ts');
      const to = floorOf(target);
      if (to > from) bad.push(`${path} imports ${target} (${FLOORS[from]?.floor ?? 'no floor'} < ${FLOORS[to]!.floor})`);
    }
  }
  return bad;
}

describe('floors', () => {
  const files = ['app', 'harness', 'kernels', 'properties', 'golden'].flatMap(sources).map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));

  it('every source file stands on a floor', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => floorOf(f.path) < 0).map((f) => f.path)).toEqual([]);
  });

  it('no module imports from a higher floor', () => {
    expect(upwardImports(files)).toEqual([]);
  });

  it('an upward import is caught (the check can fail)', () => {
    const text = "import { detect } from '../loader/detect.js';\nexport { x } from '../../app/runner.js';\nconst m = await import('../quant/scheme.js');";
    expect(upwardImports([{ path: 'harness/layouts/registry.ts', text }])).toEqual([
      'harness/layouts/registry.ts imports harness/loader/detect.ts (layouts < loader)',
      'harness/layouts/registry.ts imports app/runner.ts (layouts < app)',
      'harness/layouts/registry.ts imports harness/quant/scheme.ts (layouts < quant)',
    ]);
  });
});
