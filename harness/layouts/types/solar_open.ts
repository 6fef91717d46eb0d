// solar_open: deepseek_v3's block in every decoder layer; one group, scaling 1 by default.
import { allLayers } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const solar_open = dsv3Like('solar_open', { firstDense: 0, groups: 1, topkGroups: 1, norm: true, scaling: 1, moeLayers: allLayers });
