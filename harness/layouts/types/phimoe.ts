// phimoe: Mixtral's tensors, the router renamed in v5; sparsemixer routing (top-2).
import type { ModelEntry } from '../model-type.js';
import { fusedV5, layer, mixtralConfig, mixtralDims, perExpertW, router, siluGated } from './common.js';

export const phimoe: ModelEntry = {
  modelType: 'phimoe',
  dims: mixtralDims,
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('gate.weight'), ...perExpertW] },
    fused: { module: layer('mlp'), tensors: [router('router.weight'), ...fusedV5] },
  },
  // Sparsemixer's mask threshold; PhimoeConfig defaults router_jitter_noise to 0.01.
  routing: (c) => ({ kind: 'sparsemixer', jitterEps: c.num('router_jitter_noise', 0.01) }),
  activation: siluGated,
  generator: { shared: 'none', topK: 2, config: mixtralConfig },
};
