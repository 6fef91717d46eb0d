// Every golden fixture made by transformers through every fast kernel backend (gpu.js in
// its cpu, webasm and webgpu modes, the WebAssembly SIMD path, hand-written WGSL): both
// layouts, the whole model and one TP×EP split, each within the float32 bound.
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, createBackends } from '../../kernels/backends.js';
import type { MoeBackend } from '../../kernels/backend.js';
import { discoverFixtures, runGolden, type GoldenRow } from '../golden.js';

const SPLITS = [
  { tp: 1, ep: 1, placement: 'linear' as const },
  { tp: 2, ep: 3, placement: 'round_robin' as const },
];
const created: MoeBackend[] = [];
afterAll(async () => {
  for (const b of created) await b.dispose?.();
});

const describeRow = (r: GoldenRow) => `${r.fixture} ${r.layout} ${r.split} ${r.backend}: ${r.tier} ${r.error ?? ''}`;

describe.each(BACKENDS.filter((b) => b.name !== 'reference-f64').map((b) => b.name))('golden fixtures with %s', (name) => {
  it('every fixture and layout matches transformers, whole and split', async () => {
    const [backend] = await createBackends([name]);
    created.push(backend!);
    const fixtures = await discoverFixtures();
    const rows = await runGolden({ fixtures, backends: [backend!], splits: SPLITS });
    expect(rows.filter((r) => r.tier !== 'pass').map(describeRow)).toEqual([]);
    // Both layouts of all 40 fixtures, whole; the split wherever the model allows it.
    expect(rows.filter((r) => r.split === 'TP1').length).toBe(fixtures.length * 2);
    expect(rows.every((r) => r.backend === name)).toBe(true);
  });
});
