// nemotron_h: the only non-gated experts of transformers 5.17 (NemotronHExperts: up_proj and
// down_proj only, relu² between), in the MoE layers of a hybrid stack (layers_block_type
// "moe" among mamba / attention / mlp). The original keeps per-expert up/down under
// backbone.; v5 stacks them as experts.up_proj [E, I, H] and down_proj [E, H, I] under
// model.. The shared expert is non-gated relu² too, plain add. Routing is deepseek_v3's
// sigmoid group-limited rule, except that dropped groups' experts score -inf, not 0
// (NemotronHTopkRouter). The latent projections (moe_latent_size) are not supported.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { part, stackExperts } from '../ops.js';
import { correctionBias, dimsFrom, layersOfType, range, router, shared, t } from './common.js';

const sharedUpDown = [
  t('shared_experts.up_proj.weight', part('shared_up_proj'), shared),
  t('shared_experts.down_proj.weight', part('shared_down_proj'), shared),
];
const block = (l: LayoutName, experts: TensorSpec[]): ModuleLayout => ({
  module: `${l === 'original' ? 'backbone' : 'model'}.layers.{L}.mixer`,
  tensors: [router('gate.weight'), correctionBias('gate.e_score_correction_bias'), ...experts, ...sharedUpDown],
});

function relu2(c: ModelConfig) {
  const act = c.str('mlp_hidden_act', 'relu2');
  if (act !== 'relu2') throw new LayoutConfigError('nemotron_h experts are supported with relu2 only', { file: 'config.json', expected: 'mlp_hidden_act relu2', found: act });
  if (c.has('moe_latent_size')) throw new LayoutConfigError('MoE latent projections are not supported', { file: 'config.json', expected: 'moe_latent_size null', found: c.raw['moe_latent_size'] });
  return { kind: 'relu2' } as const;
}

export const nemotron_h: ModelEntry = {
  modelType: 'nemotron_h',
  dims: dimsFrom({
    experts: ['n_routed_experts', 'num_local_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    // NemotronHMLP falls back to intermediate_size when the shared size is 0: it always exists.
    shared: (c) => c.int('moe_shared_expert_intermediate_size') || c.int('intermediate_size'),
    moeLayers: layersOfType('layers_block_type', 'moe', () => []),
    features: () => ({ correctionBias: true, correctionBiasF32: true, nonGated: true }),
  }),
  layouts: {
    original: block('original', [t('experts.{e}.up_proj.weight', part('up')), t('experts.{e}.down_proj.weight', part('down'))]),
    fused: block('fused', [t('experts.up_proj', stackExperts(part('up'))), t('experts.down_proj', stackExperts(part('down')))]),
  },
  routing: (c) => ({
    kind: 'sigmoid_group_limited_bias',
    groups: c.int('n_group', 1),
    topkGroups: c.int('topk_group', 1),
    renormalize: c.bool('norm_topk_prob', true),
    scaling: c.num('routed_scaling_factor', 1),
    maskNegInf: true,
  }),
  activation: relu2,
  extra: (c) => ({ sharedActivation: relu2(c) }),
  generator: {
    shared: 'free',
    grouped: true,
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      layers_block_type: range(s.layers).map(() => 'moe'),
      num_experts_per_tok: s.topK,
      n_routed_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      moe_shared_expert_intermediate_size: Is,
      n_group: s.groups,
      topk_group: s.topkGroups,
    }),
  },
};
