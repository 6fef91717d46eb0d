// The canonical tensors in the one form every kernel computes: w13 holds gate rows then up
// rows, and biases of the output are per-expert down biases. Non-gated experts (spec §1: w13
// holds the up rows alone, nemotron_h) get all-zero gate rows in front, which their
// activation (relu² of up) never reads; so no backend needs a second expert shape, only the
// activation. Zero bytes are +0 in every float dtype. A block output bias (jetmoe, routing
// weights that sum to 1) becomes every expert's down bias: Σ_k w_k·b = b.
import { isGated, SILU_GATED, type MoeSemantics } from '../harness/layouts/semantics.js';
import { MoeConformanceError } from '../harness/errors.js';
import type { Tensor } from '../harness/tensor.js';
import { decodeFloats64, encodeFloats } from '../harness/safetensors/codecs.js';
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

/** `[n, a, c]` = `[n, a, b]` · `[b, c]` (left) or `[a, b]` · `[n, b, c]` (right), in float64, as F32. */
function product(left: Tensor, right: Tensor, stackedLeft: boolean): Tensor {
  const A = decodeFloats64(left.dtype, left.bytes);
  const B = decodeFloats64(right.dtype, right.bytes);
  const stacked = stackedLeft ? left : right;
  const n = stacked.shape[0]!;
  const [a, b] = stackedLeft ? [left.shape[1]!, left.shape[2]!] : [left.shape[0]!, left.shape[1]!];
  const c = stackedLeft ? right.shape[1]! : right.shape[2]!;
  const out = new Float64Array(n * a * c);
  for (let s = 0; s < n; s++) {
    const ao = stackedLeft ? s * a * b : 0;
    const bo = stackedLeft ? 0 : s * b * c;
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < c; j++) {
        let v = 0;
        for (let m = 0; m < b; m++) v += A[ao + i * b + m]! * B[bo + m * c + j]!;
        out[s * a * c + i * c + j] = v;
      }
    }
  }
  return { dtype: 'F32', shape: [n, a, c], bytes: encodeFloats('F32', out) };
}

/**
 * nemotron_h's latent MoE folded into its experts: w13 · latent.fc1 and latent.fc2 · w2 are the
 * experts seen from H (the projections are linear and bias-free), so no backend needs a
 * latent stage. Products in float64, kept as F32.
 */
function foldLatent(tensors: Map<string, Tensor>): void {
  for (const name of [...tensors.keys()].filter((n) => n.endsWith('.latent.fc1'))) {
    const prefix = name.slice(0, -'latent.fc1'.length);
    const fc1 = tensors.get(name)!;
    const fc2 = tensors.get(`${prefix}latent.fc2`);
    const w13 = tensors.get(`${prefix}experts.w13`);
    const w2 = tensors.get(`${prefix}experts.w2`);
    if (!fc2 || !w13 || !w2) throw new KernelFormError('latent projections need latent.fc2, experts.w13 and experts.w2 beside latent.fc1', { tensor: name, expected: `${prefix}latent.fc2, ${prefix}experts.w13/w2`, found: [...tensors.keys()].filter((k) => k.startsWith(prefix)) });
    tensors.set(`${prefix}experts.w13`, product(w13, fc1, true));
    tensors.set(`${prefix}experts.w2`, product(fc2, w2, false));
    tensors.delete(name);
    tensors.delete(`${prefix}latent.fc2`);
  }
}

/** The ranks in kernel form (above); ranks already in it pass unchanged. */
export function kernelForm<R extends RankTensors>(sem: MoeSemantics, ranks: R[]): R[] {
  const routed = !isGated(sem.activation);
  const shared = !isGated(sem.sharedActivation ?? SILU_GATED);
  const outputBias = ranks.some((r) => [...r.tensors.keys()].some((n) => n.endsWith('.output_bias')));
  const latent = ranks.some((r) => [...r.tensors.keys()].some((n) => n.endsWith('.latent.fc1')));
  if (!routed && !shared && !outputBias && !latent) return ranks;
  if (outputBias && !(sem.routing.kind === 'topk_softmax' && (sem.routing.scaling ?? 1) === 1)) {
    throw new KernelFormError('an output bias is computed as per-expert down biases only where routing weights sum to 1', { expected: 'topk_softmax routing', found: sem.routing.kind });
  }
  return ranks.map((r) => {
    const tensors = new Map(r.tensors);
    if (latent) foldLatent(tensors);
    for (const [name, t] of [...tensors]) {
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
