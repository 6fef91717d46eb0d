// longcat_flash: zero-compute (identity) experts. The router (router.classifier, optional
// bias, e_score_correction_bias) scores E real + Z zero experts; softmax over all E + Z, the
// choice by p + correction bias, weights p[idx] × routed_scaling_factor, not renormalised.
// A chosen zero expert adds weight · x. gate/up are stored for all E + Z experts (the zero
// experts' are dead weights: checked for shape, never loaded), down for the E real ones. The
// classifier's bias (router_bias) is stored but never applied by transformers 5.17.
// Each decoder layer (num_layers of them; num_hidden_layers counts its two attention
// sublayers) holds one MoE block beside two dense MLPs (mlps).
import type { LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import { concat, part, stackExperts } from '../ops.js';
import { correctionBias, dimsFrom, layer, siluGated, t } from './common.js';

const routerTensors = [
  t('router.classifier.weight', part('router')),
  // transformers 5.17 builds the classifier's bias (router_bias) but computes the logits with
  // the weight alone (F.linear(x, classifier.weight)): the bias is stored, never used.
  t('router.classifier.bias', part('unused_router_bias'), (f) => f.unusedRouterBias === true),
  correctionBias('router.e_score_correction_bias'),
];
const EXPERTS: Record<LayoutName, TensorSpec[]> = {
  original: [
    { ...t('experts.{e}.gate_proj.weight', part('gate')), zeroExpertsToo: true },
    { ...t('experts.{e}.up_proj.weight', part('up')), zeroExpertsToo: true },
    t('experts.{e}.down_proj.weight', part('down')),
  ],
  fused: [
    t('experts.gate_up_proj', stackExperts(concat(0, part('gate'), part('up')), true)),
    t('experts.down_proj', stackExperts(part('down'))),
  ],
};
const block = (l: LayoutName): ModuleLayout => ({ module: layer('mlp'), tensors: [...routerTensors, ...EXPERTS[l]] });

export const longcat_flash: ModelEntry = {
  modelType: 'longcat_flash',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_local_experts'],
    intermediate: 'expert_ffn_hidden_size',
    topK: ['moe_topk', 'num_experts_per_tok'],
    layers: (c) => c.int('num_layers'),
    zeroExperts: (c) => c.int('zero_expert_num', 0),
    features: (c) => ({ correctionBias: true, unusedRouterBias: c.bool('router_bias', false) }),
  }),
  layouts: { original: block('original'), fused: block('fused') },
  routing: (c) => ({ kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: c.num('routed_scaling_factor', 6) }),
  activation: siluGated,
  extra: (_c, d) => ({ experts: d.experts + (d.zeroExperts ?? 0), zeroExperts: d.zeroExperts ?? 0 }),
  generator: {
    shared: 'none',
    config: (s) => ({
      hidden_size: s.hidden,
      num_layers: s.layers,
      num_hidden_layers: 2 * s.layers,
      moe_topk: s.topK,
      n_routed_experts: s.experts,
      zero_expert_num: 1 + (s.experts % 3),
      expert_ffn_hidden_size: s.intermediate,
      router_bias: s.experts % 2 === 0,
    }),
  },
};
