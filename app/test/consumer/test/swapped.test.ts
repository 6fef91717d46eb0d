import { referenceLoader } from 'moe-conformance';
import { defineMoeConformanceSuite } from 'moe-conformance/vitest';

// A loader with a real bug: gate and up halves of w13 swapped.
defineMoeConformanceSuite({
  name: 'swapped',
  cases: 2,
  capabilities: { modelTypes: ['mixtral'], layouts: ['fused'], dtypes: ['f32'] },
  load: async (dir, req) => {
    const out = await referenceLoader.load(dir, req);
    for (const [name, t] of out) {
      if (!name.endsWith('experts.w13')) continue;
      const [e, twoI, h] = t.shape as [number, number, number];
      const half = (twoI / 2) * h * 4;
      const b = new Uint8Array(t.bytes.length);
      for (let x = 0; x < e; x++) {
        const o = x * 2 * half;
        b.set(t.bytes.subarray(o + half, o + 2 * half), o);
        b.set(t.bytes.subarray(o, o + half), o + half);
      }
      out.set(name, { ...t, bytes: b });
    }
    return out;
  },
});
