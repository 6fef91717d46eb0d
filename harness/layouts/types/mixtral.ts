// mixtral (and minimax, whose MoE block is a copy of Mixtral's): per-expert w1/w2/w3 under
// block_sparse_moe, v5's fused form under mlp; softmax top-k, renormalised.
import type { ModelEntry } from '../model-type.js';
import { fusedV5, layer, mixtralConfig, mixtralDims, perExpertW, renormalizedSoftmax, router, siluGated } from './common.js';

export const mixtralBlock = (modelType: string): ModelEntry => ({
  modelType,
  dims: mixtralDims,
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('gate.weight'), ...perExpertW] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), ...fusedV5] },
  },
  routing: renormalizedSoftmax,
  activation: siluGated,
  generator: { shared: 'none', config: mixtralConfig },
});

export const mixtral = mixtralBlock('mixtral');
export const minimax = mixtralBlock('minimax');
