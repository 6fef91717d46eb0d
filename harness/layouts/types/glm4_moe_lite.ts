// glm4_moe_lite: deepseek_v3's MoE block (MLA attention around it); MoE where mlp_layer_types
// says "sparse" (default: the first layer dense); one group; routed_scaling_factor 1.8.
import { allLayers, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const glm4_moe_lite = dsv3Like('glm4_moe_lite', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 1.8,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => allLayers(c).slice(1)),
  generatorConfig: allSparse,
});
