// axk2: deepseek_v32's MoE block (per-expert gate/up/down_proj in the original, shared experts,
// F32 correction bias); sigmoid + bias, group-limited only where n_group is set (A.X-K2-Light:
// null, one group), dropped groups scoring 0.0, renormalised if norm_topk_prob, × scale. MoE
// where mlp_layer_types says "sparse" (default: from first_k_dense_replace = 1).
import { afterFirstDense, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const axk2 = dsv3Like('axk2', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 2.5,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', afterFirstDense(1)),
  generatorConfig: allSparse,
});
