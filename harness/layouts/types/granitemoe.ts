// granitemoe: original input_linear/output_linear [E, 2I, H]/[E, H, I] with router.layer; top-k of logits, softmax over k.
import type { ModelEntry } from '../model-type.js';
import { fusedV5, graniteLinear, layer, mixtralConfig, mixtralDims, router, siluGated } from './common.js';

export const granitemoe: ModelEntry = {
  modelType: 'granitemoe',
  dims: mixtralDims,
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('router.layer.weight'), ...graniteLinear] },
    fused: { module: layer('block_sparse_moe'), tensors: [router('router.weight'), ...fusedV5] },
  },
  routing: () => ({ kind: 'topk_softmax' }),
  activation: siluGated,
  generator: { shared: 'none', config: mixtralConfig },
};
