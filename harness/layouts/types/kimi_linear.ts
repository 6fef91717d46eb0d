// kimi_linear: deepseek_v3's MoE block under Mixtral's original names (block_sparse_moe.,
// per-expert w1/w3/w2, renamed to mlp. and fused in v5) after KDA linear or full attention.
// Its config saves the routing fields under attribute_map names: num_experts,
// num_experts_per_token, num_shared_experts, num_expert_group, moe_renormalize. MoE where
// mlp_layer_types says "sparse" (default: first dense). The correction bias is not kept in
// F32 (no _keep_in_fp32_modules_strict).
import { allLayers, allSparse, layersOfType, perExpertW } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

export const kimi_linear = dsv3Like('kimi_linear', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 2.446,
  experts: ['num_experts', 'n_routed_experts'],
  topK: ['num_experts_per_token', 'num_experts_per_tok'],
  sharedCount: { field: 'num_shared_experts', fallback: 1 },
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => allLayers(c).slice(1)),
  module: { original: 'block_sparse_moe', fused: 'mlp' },
  originalExperts: perExpertW,
  biasF32: false,
  generatorConfig: allSparse,
});
