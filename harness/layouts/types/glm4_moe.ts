// glm4_moe: deepseek_v3's MoE block; one dense layer first by default, one group.
import { dsv3Like } from './deepseek_v3.js';

export const glm4_moe = dsv3Like('glm4_moe', { firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 1 });
