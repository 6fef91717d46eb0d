// A fast backend against the float64 reference on the same layer and input: the same
// experts selected and every output element within the reference's strict float32 bound;
// the first element past it fails with its index, token and both values.
import { expect } from 'vitest';
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { MoeBackend, MoeForwardResult, RankTensors } from '../backend.js';
import { referenceForward, type ReferenceResult } from '../moe.js';

/** Returns both results, and the largest error as a fraction of its element's bound. */
export async function expectWithinReferenceBound(
  backend: MoeBackend, sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number,
): Promise<{ ref: ReferenceResult; got: MoeForwardResult; worst: number }> {
  const ref = referenceForward(sem, layer, ranks, x, tokens, { bound: true });
  const got = await backend.forward(sem, layer, ranks, x, tokens);
  expect(got.selected).toEqual(ref.selected);
  expect(got.output.length).toBe(ref.output.length);
  let worst = 0;
  for (let i = 0; i < ref.output.length; i++) {
    const err = Math.abs(got.output[i]! - ref.output[i]!);
    const bound = ref.bounds!.strict[i]!;
    if (!(err <= bound)) {
      throw new Error(`element ${i} (token ${Math.floor(i / sem.hidden)}): ${backend.name} ${got.output[i]} vs reference ${ref.output[i]}, error ${err} > bound ${bound}`);
    }
    worst = Math.max(worst, err / bound);
  }
  return { ref, got, worst };
}
