import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  blockOf,
  concat,
  flattenLeading,
  gather,
  interleave,
  part,
  partViews,
  scatter,
  stackExperts,
  transposeLast,
  unsqueezeLeading,
  type Op,
  type PartName,
  type PartSizes,
} from './ops.js';

const seed = Number(process.env.FC_SEED ?? 42);

// Independent model of the torch operations: nested arrays of element labels.
type Nd = unknown[];
const label = (p: PartName, e: number, idx: number[]) => `${p}/${e}/${idx.join(',')}`;
function partArray(p: PartName, e: number, shape: number[], prefix: number[] = []): Nd {
  const [n, ...rest] = shape;
  return Array.from({ length: n! }, (_, i) => (rest.length === 0 ? label(p, e, [...prefix, i]) : partArray(p, e, rest, [...prefix, i])));
}
const cat0 = (a: Nd, b: Nd): Nd => [...a, ...b];
const inter0 = (a: Nd, b: Nd): Nd => a.flatMap((x, i) => [x, b[i]]);
const transpose2 = (m: Nd): Nd => (m[0] as Nd).map((_, j) => m.map((row) => (row as Nd)[j]));
const flat = (x: unknown): unknown[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

const sizes = fc.record({
  experts: fc.integer({ min: 1, max: 4 }),
  hidden: fc.integer({ min: 1, max: 5 }),
  intermediate: fc.integer({ min: 1, max: 5 }),
  sharedIntermediate: fc.integer({ min: 0, max: 3 }),
});

// Each registry family, with the same tensor built by the independent model.
const families: Array<{ name: string; op: Op; reference: (s: PartSizes) => Nd }> = [
  {
    name: 'fused v5 gate_up_proj [E, 2I, H]',
    op: stackExperts(concat(0, part('gate'), part('up'))),
    reference: (s) => range(s.experts).map((e) => cat0(partArray('gate', e, [s.intermediate, s.hidden]), partArray('up', e, [s.intermediate, s.hidden]))),
  },
  {
    name: 'llama4 gate_up_proj [E, H, 2I]',
    op: stackExperts(transposeLast(concat(0, part('gate'), part('up')))),
    reference: (s) => range(s.experts).map((e) => transpose2(cat0(partArray('gate', e, [s.intermediate, s.hidden]), partArray('up', e, [s.intermediate, s.hidden])))),
  },
  {
    name: 'gpt_oss gate_up_proj [E, H, 2I] interleaved',
    op: stackExperts(transposeLast(interleave(0, part('gate'), part('up')))),
    reference: (s) => range(s.experts).map((e) => transpose2(inter0(partArray('gate', e, [s.intermediate, s.hidden]), partArray('up', e, [s.intermediate, s.hidden])))),
  },
  {
    name: 'gpt_oss gate_up_proj_bias [E, 2I] interleaved',
    op: stackExperts(interleave(0, part('gate_bias'), part('up_bias'))),
    reference: (s) => range(s.experts).map((e) => inter0(partArray('gate_bias', e, [s.intermediate]), partArray('up_bias', e, [s.intermediate]))),
  },
  {
    name: 'dbrx w2 [E*I, H] (down transposed)',
    op: flattenLeading(stackExperts(transposeLast(part('down')))),
    reference: (s) => range(s.experts).flatMap((e) => transpose2(partArray('down', e, [s.hidden, s.intermediate]))),
  },
  {
    name: 'ernie correction bias [1, E]',
    op: unsqueezeLeading(part('correction_bias')),
    reference: (s) => [partArray('correction_bias', 0, [s.experts])],
  },
];

describe('reversible layout operations', () => {
  for (const f of families) {
    it(`${f.name}: views place every part element where torch would`, () => {
      fc.assert(
        fc.property(sizes, (s) => {
          const c = f.op(s);
          const expected = flat(f.reference(s));
          const elements = c.shape.reduce((a, b) => a * b, 1);
          expect(expected.length).toBe(elements);
          // Scatter labels through the views into a tensor, then compare with the model.
          const got: string[] = new Array(elements);
          for (const v of partViews(c, s)) {
            const perExpert = v.expertStride !== 0;
            for (const e of perExpert ? range(s.experts) : [0]) {
              const [rows, cols] = v.shape.length === 2 ? v.shape : [1, v.shape[0]!];
              const b = blockOf(v, e, [0, rows!], [0, cols!]);
              for (let i = 0; i < b.rows; i++)
                for (let j = 0; j < b.cols; j++) got[b.offset + i * b.rowStride + j * b.colStride] = label(v.part, perExpert ? e : 0, v.shape.length === 2 ? [i, j] : [j]);
            }
          }
          expect(got).toEqual(expected);
        }),
        { seed, numRuns: 40 },
      );
    });
  }

  it('the word-copy fast path of gather equals the byte copy (aligned and misaligned buffers)', () => {
    fc.assert(
      fc.property(sizes, fc.constantFrom(1, 2, 4, 8), fc.boolean(), (s, elemBytes, misalign) => {
        const c = families[1]!.op(s); // transposed: strided columns
        const view = partViews(c, s)[1]!;
        const elems = c.shape.reduce((a, b) => a * b, 1);
        const backing = Uint8Array.from({ length: elems * elemBytes + 1 }, (_, i) => (i * 31 + 7) & 0xff);
        const source = misalign ? backing.subarray(1) : backing.subarray(0, elems * elemBytes);
        const b = blockOf(view, 0, [0, view.shape[0]!], [0, view.shape[1]!]);
        const bytewise = new Uint8Array(b.rows * b.cols * elemBytes);
        let o = 0;
        for (let i = 0; i < b.rows; i++)
          for (let j = 0; j < b.cols; j++)
            for (let k = 0; k < elemBytes; k++) bytewise[o++] = source[(b.offset + i * b.rowStride + j * b.colStride) * elemBytes + k]!;
        expect(gather(source, 0, b, elemBytes)).toEqual(bytewise);
      }),
      { seed, numRuns: 60 },
    );
  });

  it('gather is the inverse of scatter on a cut block (F16 elements)', () => {
    fc.assert(
      fc.property(sizes, fc.integer({ min: 0, max: 3 }), (s, pick) => {
        const f = families[pick]!;
        const c = f.op(s);
        const view = partViews(c, s)[0]!;
        const elems = c.shape.reduce((a, b) => a * b, 1);
        const target = new Uint8Array(elems * 2);
        const [rows] = view.shape.length === 2 ? view.shape : [1];
        const cols = view.shape[view.shape.length - 1]!;
        const b = blockOf(view, s.experts - 1, [0, rows!], [Math.floor(cols / 2), cols]);
        const values = Uint8Array.from({ length: b.rows * b.cols * 2 }, (_, i) => (i * 7 + 3) & 0xff);
        scatter(target, b, values, 2);
        expect(gather(target, 0, b, 2)).toEqual(values);
      }),
      { seed, numRuns: 40 },
    );
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
