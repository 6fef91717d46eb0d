// mimo_v2_flash: deepseek_v3's block without shared experts; MoE where mlp_layer_types says
// "sparse" (default: the first layer dense). routed_scaling_factor null means 1.
import { allLayers, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const mimo_v2_flash = dsv3Like('mimo_v2_flash', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 1,
  sharedCount: null,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => allLayers(c).slice(1)),
  generatorConfig: allSparse,
});
