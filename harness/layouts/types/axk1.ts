// axk1: deepseek_v3's MoE block (per-expert gate/up/down_proj in the original, shared experts
// I × n_shared_experts, F32 correction bias, sigmoid group-limited routing; defaults n_group 8,
// topk_group 4, × 2.5; MoE after first_k_dense_replace = 1) whose output, routed + shared, goes
// through an RMSNorm (AXK1MoE.post_mlp_layernorm, eps rms_norm_eps): semantics.outputNorm,
// canonical layers.L.output_norm. The original stores that norm beside the block, at the
// decoder layer (post_mlp_layernorm.weight); transformers' conversion moves it into mlp.
import type { ModelEntry } from '../model-type.js';
import { part } from '../ops.js';
import { t } from './common.js';
import { dsv3Like } from './deepseek_v3.js';

const base = dsv3Like('axk1', { firstDense: 1, groups: 8, topkGroups: 4, norm: true, scaling: 2.5, experts: ['n_routed_experts', 'num_local_experts'] });

export const axk1: ModelEntry = {
  ...base,
  dims: (c) => {
    const d = base.dims(c);
    return { ...d, features: { ...d.features, outputNorm: true } };
  },
  layouts: {
    original: { ...base.layouts.original, tensors: [...base.layouts.original.tensors, t('../post_mlp_layernorm.weight', part('output_norm'))] },
    fused: { ...base.layouts.fused, tensors: [...base.layouts.fused.tensors, t('post_mlp_layernorm.weight', part('output_norm'))] },
  },
  extra: (c) => ({ outputNorm: { eps: c.num('rms_norm_eps', 1e-6) } }),
};
