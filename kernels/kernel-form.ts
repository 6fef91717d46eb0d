// The canonical tensors in the one form every kernel computes: w13 holds gate rows then up
// rows, and biases of the output are per-expert down biases. Non-gated experts (spec §1: w13
// holds the up rows alone, nemotron_h) get all-zero gate rows in front, which their
// activation (relu² of up) never reads; so no backend needs a second expert shape, only the
// activation. Zero bytes are +0 in every float dtype. A block output bias (jetmoe, routing
// weights that sum to 1) becomes every expert's down bias: Σ_k w_k·b = b.
import { isGated, SILU_GATED, type MoeSemantics } from '../harness/layouts/semantics.js';
import { MoeConformanceError } from '../harness/errors.js';
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

export class KernelFormError extends MoeConformanceError {}

/** `[n, H]`: the `[H]` output bias once per local expert. */
function perExpert(bias: Tensor, n: number): Tensor {
  const bytes = new Uint8Array(n * bias.bytes.length);
  for (let i = 0; i < n; i++) bytes.set(bias.bytes, i * bias.bytes.length);
  return { dtype: bias.dtype, shape: [n, ...bias.shape], bytes };
}

/** The ranks in kernel form (above); ranks already in it pass unchanged. */
export function kernelForm<R extends RankTensors>(sem: MoeSemantics, ranks: R[]): R[] {
  const routed = !isGated(sem.activation);
  const shared = !isGated(sem.sharedActivation ?? SILU_GATED);
  const outputBias = ranks.some((r) => [...r.tensors.keys()].some((n) => n.endsWith('.output_bias')));
  if (!routed && !shared && !outputBias) return ranks;
  if (outputBias && !(sem.routing.kind === 'topk_softmax' && (sem.routing.scaling ?? 1) === 1)) {
    throw new KernelFormError('an output bias is computed as per-expert down biases only where routing weights sum to 1', { expected: 'topk_softmax routing', found: sem.routing.kind });
  }
  return ranks.map((r) => {
    const tensors = new Map(r.tensors);
    for (const [name, t] of r.tensors) {
      if ((routed && name.endsWith('.experts.w13')) || (shared && name.endsWith('.shared.w13'))) tensors.set(name, withZeroGate(t));
      if (name.endsWith('.output_bias')) {
        const prefix = name.slice(0, -'output_bias'.length);
        const ids = r.tensors.get(`${prefix}experts.ids`);
        if (ids === undefined || r.tensors.has(`${prefix}experts.w2_bias`)) {
          throw new KernelFormError('an output bias needs the rank\'s expert ids and no down bias of its own', { tensor: name, expected: `${prefix}experts.ids, no ${prefix}experts.w2_bias`, found: [...r.tensors.keys()].filter((k) => k.startsWith(prefix)) });
        }
        tensors.set(`${prefix}experts.w2_bias`, perExpert(t, ids.shape[0]!));
        tensors.delete(name);
      }
    }
    return { ...r, tensors };
  });
}
