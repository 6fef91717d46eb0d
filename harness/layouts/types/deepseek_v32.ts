// deepseek_v32: deepseek_v3's MoE block (sparse-attention indexer around it); MoE where
// mlp_layer_types says "sparse" (default: after first_k_dense_replace = 3).
import { afterFirstDense, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const deepseek_v32 = dsv3Like('deepseek_v32', {
  firstDense: 3, groups: 8, topkGroups: 4, norm: true, scaling: 2.5,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', afterFirstDense(3)),
  generatorConfig: allSparse,
});
