// doge: DogeCDMoE in every layer when is_moe (else a dense DogeMLP: no MoE layers). Routed
// experts are single neurons, non-gated: expert e adds w · silu(down_embed_e · x) · up_embed_e
// (down_embed, up_embed: nn.Embedding [E, H]), canonically w13 [E, 1, H] (the up row =
// down_embed_e) and w2 [E, H, 1] (= up_embed_eᵀ), activation `silu` (hidden_act). Beside them
// an always-on SwiGLU MLP of intermediate_size (gate_proj/up_proj/down_proj), the shared
// expert. The router is product keys: router_gate [2K, H], K = floor(√E) (routing
// `product_key`, with transformers' token-mixing view of the logits). Single neurons cannot be
// cut by TP: only TP 1 divides I = 1. One layout (no conversion mapping).
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { flattenLeading, part, stackExperts, transposeLast } from '../ops.js';
import { allLayers, dimsFrom, layer, same, t } from './common.js';

const keys = (experts: number) => Math.floor(Math.sqrt(experts));

function silu(c: ModelConfig) {
  const act = c.str('hidden_act', 'silu');
  if (act !== 'silu') throw new LayoutConfigError('doge experts are supported with silu only', { file: c.file, expected: 'hidden_act silu', found: act });
  if (c.bool('mlp_bias', false)) throw new LayoutConfigError('doge MLP biases are not supported', { file: c.file, expected: 'mlp_bias false', found: true });
  return { kind: 'silu' } as const;
}

const base = dimsFrom({
  experts: 'num_experts',
  // Placeholder field for dimsFrom; the expert size is 1 (set below).
  intermediate: 'intermediate_size',
  topK: 'num_experts_per_tok',
  shared: (c) => c.int('intermediate_size'),
  moeLayers: (c) => (c.bool('is_moe', false) ? allLayers(c) : []),
  features: () => ({ nonGated: true, gatedShared: true }),
});

export const doge: ModelEntry = {
  modelType: 'doge',
  dims: (c) => {
    const d = base(c);
    if (d.topK > keys(d.experts) ** 2) throw new LayoutConfigError('product keys reach floor(√E)² experts: top-k exceeds them', { file: c.file, expected: `<= ${keys(d.experts) ** 2}`, found: d.topK });
    return { ...d, intermediate: 1, routerRows: 2 * keys(d.experts) };
  },
  layouts: same({
    module: layer('mlp'),
    tensors: [
      t('router_gate.weight', part('router')),
      t('down_embed.weight', flattenLeading(stackExperts(part('up')))),
      t('up_embed.weight', flattenLeading(stackExperts(transposeLast(part('down'))))),
      t('gate_proj.weight', part('shared_gate_proj')),
      t('up_proj.weight', part('shared_up_proj')),
      t('down_proj.weight', part('shared_down_proj')),
    ],
  }),
  routing: (c) => ({ kind: 'product_key', keys: keys(c.int('num_experts')), renormalize: c.bool('norm_topk_prob', false) }),
  activation: silu,
  extra: (_c, d) => ({ routerRows: d.routerRows! }),
  generator: {
    shared: 'free',
    intermediate: 1,
    maxTopK: (experts) => keys(experts) ** 2,
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: s.topK,
      num_experts: s.experts,
      intermediate_size: Is,
      is_moe: true,
      norm_topk_prob: s.experts % 2 === 0,
    }),
  },
};
