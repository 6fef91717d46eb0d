// hy_v4: glm4_moe_lite's MoE block with clamped SwiGLU routed experts (HYV4Experts:
// silu(min(g, swiglu_limit)) · clamp(u, ±swiglu_limit), default 10) and a plain SwiGLU shared
// MLP; DSV3 routing with dropped groups scoring -inf (HYV4TopkRouter). No conversion of the
// experts (fused 3D in both layouts), but the original names the shared MLP's gate_proj
// linear_gate (the `\.linear_gate` → `.gate_proj` rename meant for the attention gate also
// matches it). MoE where mlp_layer_types says "sparse" (default: the first layer dense).
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry, TensorSpec } from '../model-type.js';
import type { ExpertActivation } from '../semantics.js';
import { allLayers, allSparse, layersOfType } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

const base = dsv3Like('hy_v4', {
  firstDense: 1, groups: 1, topkGroups: 1, norm: true, scaling: 2.827,
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => allLayers(c).slice(1)),
  generatorConfig: allSparse,
});
const renamed = (s: TensorSpec): TensorSpec => (s.key === 'shared_experts.gate_proj.weight' ? { ...s, key: 'shared_experts.linear_gate.weight' } : s);
// The original stores the experts fused too: v5's tensors, the shared gate_proj renamed.
const original = base.layouts.fused.tensors.map(renamed);

export const hy_v4: ModelEntry = {
  ...base,
  layouts: { original: { ...base.layouts.fused, tensors: original }, fused: base.layouts.fused },
  routing: (c) => ({ ...(base.routing(c) as Extract<ReturnType<ModelEntry['routing']>, { kind: 'sigmoid_group_limited_bias' }>), maskNegInf: true }),
  activation: (c: ModelConfig): ExpertActivation => ({ kind: 'silu_clamped', limit: c.num('swiglu_limit', 10) }),
};
