// glm_moe_dsa: deepseek_v32's block and layer rule with one expert group by default.
import { afterFirstDense, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const glm_moe_dsa = dsv3Like('glm_moe_dsa', {
  firstDense: 3, groups: 1, topkGroups: 1, norm: true, scaling: 2.5,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', afterFirstDense(3)),
  generatorConfig: allSparse,
});
