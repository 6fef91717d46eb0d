// exaone_moe: deepseek_v3's block under num_experts / num_shared_experts; the original keeps
// the correction bias on the block (mlp.e_score_correction_bias), v5 moves it into the gate.
import { afterFirstDense, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const exaone_moe = dsv3Like('exaone_moe', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 2.5,
  experts: 'num_experts',
  sharedCount: { field: 'num_shared_experts', fallback: 1 },
  moeLayers: layersOfType('mlp_layer_types', 'sparse', afterFirstDense(1)),
  bias: { original: 'e_score_correction_bias', fused: 'gate.e_score_correction_bias' },
  generatorConfig: allSparse,
});
