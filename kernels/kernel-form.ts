// The canonical tensors in the one form every kernel computes: w13 holds gate rows then up
// rows. Non-gated experts (spec §1: w13 holds the up rows alone, nemotron_h) get all-zero
// gate rows in front, which their activation (relu² of up) never reads; so no backend needs
// a second expert shape, only the activation. Zero bytes are +0 in every float dtype.
import { isGated, SILU_GATED, type MoeSemantics } from '../harness/layouts/semantics.js';
import type { Tensor } from '../harness/tensor.js';
import type { RankTensors } from './backend.js';

/** `rows`-row blocks of `t` (the last two dims `[rows, cols]`) each preceded by as many zero rows. */
function withZeroGate(t: Tensor): Tensor {
  const [rows, cols] = t.shape.slice(-2) as [number, number];
  const count = t.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const block = t.bytes.length / Math.max(1, count);
  const bytes = new Uint8Array(2 * t.bytes.length);
  for (let i = 0; i < count; i++) bytes.set(t.bytes.subarray(i * block, (i + 1) * block), (2 * i + 1) * block);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, -2), 2 * rows, cols], bytes };
}

/** The ranks with non-gated w13 (and shared.w13) widened to the gated form; gated ranks pass unchanged. */
export function gatedForm<R extends RankTensors>(sem: MoeSemantics, ranks: R[]): R[] {
  const routed = !isGated(sem.activation);
  const shared = !isGated(sem.sharedActivation ?? SILU_GATED);
  if (!routed && !shared) return ranks;
  return ranks.map((r) => {
    const tensors = new Map(r.tensors);
    for (const [name, t] of r.tensors) {
      if ((routed && name.endsWith('.experts.w13')) || (shared && name.endsWith('.shared.w13'))) tensors.set(name, withZeroGate(t));
    }
    return { ...r, tensors };
  });
}
