// granitemoe (and granitemoeshared, granitemoehybrid, whose MoE block is granitemoe's): original
// input_linear/output_linear [E, 2I, H]/[E, H, I] with router.layer, renamed in v5; top-k of
// the logits, softmax over the k. granitemoeshared/-hybrid add a shared_mlp in the decoder
// layer, outside the MoE block: it is not part of the block's canonical tensors
// (spec/layouts.md).
import type { ModelEntry } from '../model-type.js';
import { fusedV5, graniteLinear, layer, mixtralConfig, mixtralDims, router, siluGated } from './common.js';

export const graniteBlock = (modelType: string): ModelEntry => ({
  modelType,
  dims: mixtralDims,
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('router.layer.weight'), ...graniteLinear] },
    fused: { module: layer('block_sparse_moe'), tensors: [router('router.weight'), ...fusedV5] },
  },
  routing: () => ({ kind: 'topk_softmax' }),
  activation: siluGated,
  generator: { shared: 'none', config: mixtralConfig },
});

export const granitemoe = graniteBlock('granitemoe');
