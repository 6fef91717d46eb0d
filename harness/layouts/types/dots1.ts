// dots1: deepseek_v3's MoE block; no dense layer by default, weights not renormalised by default.
import { dsv3Like } from './deepseek_v3.js';

export const dots1 = dsv3Like('dots1', { firstDense: 0, groups: 1, topkGroups: 1, norm: false, scaling: 1 });
