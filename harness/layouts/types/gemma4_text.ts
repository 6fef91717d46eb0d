// gemma4_text: an MoE branch beside the dense MLP in every decoder layer (enable_moe_block),
// its router and experts children of the decoder layer itself (Gemma4TextDecoderLayer):
//   router: logits = proj · (RMSNorm(x) · scale · H^-½) (RMSNorm without weight), softmax,
//           top-k, renormalised, each weight × per_expert_scale[expert] (Gemma4TextRouter);
//   experts: GeGLU (gelu_pytorch_tanh) on RMSNorm(x) · pre_feedforward_layernorm_2.weight.
// x is the decoder layer's residual stream before the feed-forward. The canonical block runs
// from that x to the experts' weighted sum, before post_feedforward_layernorm_2 and the sum
// with the dense MLP's branch (spec/loader-protocol.md §1). One layout: transformers 5.17 has
// no conversion for gemma4_text (the v5 3D experts are the only form).
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { concat, part, stackExperts } from '../ops.js';
import { dimsFrom, layerCount, range, router, same, t } from './common.js';

function geglu(c: ModelConfig) {
  const act = c.str('hidden_activation', 'gelu_pytorch_tanh');
  if (act !== 'gelu_pytorch_tanh') throw new LayoutConfigError('gemma4 experts are supported with gelu_pytorch_tanh only', { file: c.file, expected: 'hidden_activation gelu_pytorch_tanh', found: act });
  return { kind: 'gelu_tanh_gated' } as const;
}

export const gemma4_text: ModelEntry = {
  modelType: 'gemma4_text',
  dims: dimsFrom({
    experts: 'num_experts',
    intermediate: 'moe_intermediate_size',
    topK: 'top_k_experts',
    moeLayers: (c) => (c.bool('enable_moe_block', false) ? range(layerCount(c)) : []),
    features: () => ({ gemmaRouter: true }),
  }),
  // The experts module, its siblings router and pre_feedforward_layernorm_2 beside it (`../` keys).
  layouts: same({
    module: 'model.layers.{L}.experts',
    tensors: [
      router('../router.proj.weight'),
      t('../router.scale', part('router_input_scale')),
      t('../router.per_expert_scale', part('expert_scale')),
      t('../pre_feedforward_layernorm_2.weight', part('expert_input_norm')),
      t('gate_up_proj', stackExperts(concat(0, part('gate'), part('up')))),
      t('down_proj', stackExperts(part('down'))),
    ],
  }),
  routing: () => ({ kind: 'softmax_topk', renormalize: true, scaling: 1 }),
  activation: geglu,
  extra: (c) => ({ inputNorms: { eps: c.num('rms_norm_eps', 1e-6) }, expertOutputScale: true }),
  generator: {
    shared: 'none',
    config: (s) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      enable_moe_block: true,
      num_experts: s.experts,
      top_k_experts: s.topK,
      moe_intermediate_size: s.intermediate,
    }),
  },
};
