// minimax_m2: Mixtral's tensors plus a block-level e_score_correction_bias; sigmoid routing,
// selection by s + bias, weights renormalised, no scaling (MiniMaxM2TopKRouter).
import type { ModelEntry } from '../model-type.js';
import { correctionBias, fusedV5, layer, mixtralConfig, mixtralDims, perExpertW, router, sigmoidBiasRenormalized, siluGated } from './common.js';

export const minimax_m2: ModelEntry = {
  modelType: 'minimax_m2',
  dims: (c) => {
    const d = mixtralDims(c);
    return { ...d, features: { ...d.features, correctionBias: true } };
  },
  layouts: {
    original: { module: layer('block_sparse_moe'), tensors: [router('gate.weight'), correctionBias('e_score_correction_bias'), ...perExpertW] },
    fused: { module: layer('mlp'), tensors: [router('gate.weight'), correctionBias('e_score_correction_bias'), ...fusedV5] },
  },
  routing: () => sigmoidBiasRenormalized(1),
  activation: siluGated,
  generator: { shared: 'none', config: mixtralConfig },
};
