// nemotron_h: the only non-gated experts of transformers 5.17 (NemotronHExperts: up_proj and
// down_proj only, relu² between), in the MoE layers of a hybrid stack (layers_block_type
// "moe" among mamba / attention / mlp). The original keeps per-expert up/down under
// backbone.; v5 stacks them as experts.up_proj [E, I, H] and down_proj [E, H, I] under
// model.. The shared expert is non-gated relu² too, plain add. Routing is deepseek_v3's
// sigmoid group-limited rule, except that dropped groups' experts score -inf, not 0
// (NemotronHTopkRouter). With moe_latent_size D, the routed experts work in D: fc1_latent_proj
// [D, H] projects the block input, fc2_latent_proj [H, D] the weighted expert sum back
// (canonical latent.fc1/fc2; experts [E, I, D] / [E, D, I]); mlp_bias (biased projections) refused.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { Features, LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { part, stackExperts } from '../ops.js';
import { correctionBias, dimsFrom, layersOfType, range, router, shared, t } from './common.js';

const sharedUpDown = [
  t('shared_experts.up_proj.weight', part('shared_up_proj'), shared),
  t('shared_experts.down_proj.weight', part('shared_down_proj'), shared),
];
const latent = (f: Features) => f.latent === true;
const block = (l: LayoutName, experts: TensorSpec[]): ModuleLayout => ({
  module: `${l === 'original' ? 'backbone' : 'model'}.layers.{L}.mixer`,
  tensors: [
    router('gate.weight'),
    correctionBias('gate.e_score_correction_bias'),
    ...experts,
    ...sharedUpDown,
    t('fc1_latent_proj.weight', part('latent_fc1'), latent),
    t('fc2_latent_proj.weight', part('latent_fc2'), latent),
  ],
});

function relu2(c: ModelConfig) {
  const act = c.str('mlp_hidden_act', 'relu2');
  if (act !== 'relu2') throw new LayoutConfigError('nemotron_h experts are supported with relu2 only', { file: c.file, expected: 'mlp_hidden_act relu2', found: act });
  if (latentSize(c) !== undefined && c.bool('mlp_bias', false)) throw new LayoutConfigError('biased MoE latent projections are not supported', { file: c.file, expected: 'mlp_bias false', found: true });
  return { kind: 'relu2' } as const;
}

/** moe_latent_size, or undefined where absent or null. */
function latentSize(c: ModelConfig): number | undefined {
  if (!c.has('moe_latent_size') || c.raw['moe_latent_size'] === null) return undefined;
  const D = c.int('moe_latent_size');
  if (!(D >= 1)) throw new LayoutConfigError('config gives an invalid moe_latent_size', { file: c.file, expected: 'a positive integer or null', found: D });
  return D;
}

const base = dimsFrom({
    experts: ['n_routed_experts', 'num_local_experts'],
    intermediate: 'moe_intermediate_size',
    topK: 'num_experts_per_tok',
    // NemotronHMLP falls back to intermediate_size when the shared size is 0: it always exists.
    shared: (c) => c.int('moe_shared_expert_intermediate_size') || c.int('intermediate_size'),
    moeLayers: layersOfType('layers_block_type', 'moe', () => []),
    features: (c) => ({ correctionBias: true, correctionBiasF32: true, nonGated: true, ...(latentSize(c) !== undefined ? { latent: true } : {}) }),
});

export const nemotron_h: ModelEntry = {
  modelType: 'nemotron_h',
  dims: (c) => {
    const D = latentSize(c);
    return D === undefined ? base(c) : { ...base(c), expertHidden: D };
  },
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
      // Every other drawn size works in a latent space of its own size.
      moe_latent_size: s.experts % 2 === 0 ? s.hidden + 2 : null,
    }),
  },
};
