// inkling_text: a router over E routed + S shared experts (gate.weight [E+S, H]). s = σ(l);
// top-k of the routed s + e_score_correction_bias; the k chosen and the S shared experts are
// weighted σ(l_j) / Σ σ(l) (softmax of logsigmoid) × route_scale × gate.global_scale (a stored
// [1] tensor: canonical router.global_scale); each shared expert's weight (its "gamma")
// scales its intermediate activations token by token before its down projection
// (InklingTopkRouter, InklingSharedExperts). The shared experts are stored 3-D,
// [S, I, H] / [S, H, I]: canonically one shared MLP of intermediate S·I, shared expert s its
// rows s·I .. (s+1)·I, cut contiguously for TP like any shared expert (spec/loader-protocol.md §1).
// One layout: transformers 5.17 has no conversion for inkling_text.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { part, stackSharedRouted } from '../ops.js';
import { correctionBias, dimsFrom, fusedV5, layersOfType, range, router, same, shared, siluGated, t } from './common.js';

function sharedCount(c: ModelConfig): number {
  const S = c.int('n_shared_experts', 2);
  // The router's softmax runs over the chosen and the shared experts: inkling always has some.
  if (S < 1) throw new LayoutConfigError('inkling needs at least one router-weighted shared expert', { file: c.file, expected: 'n_shared_experts >= 1', found: S });
  return S;
}

const dims = dimsFrom({
  experts: ['n_routed_experts', 'num_local_experts'],
  intermediate: 'moe_intermediate_size',
  topK: 'num_experts_per_tok',
  shared: (c) => c.int('moe_intermediate_size') * sharedCount(c),
  // InklingTextConfig: without mlp_layer_types, the first dense_mlp_idx layers (default 0) are dense.
  moeLayers: layersOfType('mlp_layer_types', 'sparse', (c) => range(c.int('num_hidden_layers')).filter((i) => i >= c.int('dense_mlp_idx', 0))),
  features: () => ({ correctionBias: true, routerGlobalScale: true }),
});

export const inkling_text: ModelEntry = {
  modelType: 'inkling_text',
  dims: (c) => ({ ...dims(c), sharedRouted: sharedCount(c) }),
  layouts: same({
    module: 'model.layers.{L}.mlp',
    tensors: [
      router('gate.weight'),
      correctionBias('gate.e_score_correction_bias'),
      t('gate.global_scale', part('router_global_scale'), (f) => f.routerGlobalScale === true),
      ...fusedV5,
      t('shared_experts.gate_proj', stackSharedRouted(part('shared_gate_proj')), shared),
      t('shared_experts.up_proj', stackSharedRouted(part('shared_up_proj')), shared),
      t('shared_experts.down_proj', stackSharedRouted(part('shared_down_proj')), shared),
    ],
  }),
  routing: (c) => ({ kind: 'sigmoid_bias_shared', shared: sharedCount(c), scaling: c.num('route_scale', 8) }),
  activation: siluGated,
  extra: (c, d) => ({ experts: d.experts + sharedCount(c), sharedRouted: sharedCount(c), routerGlobalScale: true }),
  generator: {
    shared: 'positive_multiple_of_I',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      n_routed_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      num_experts_per_tok: s.topK,
      n_shared_experts: Is / s.intermediate,
      mlp_layer_types: range(s.layers).map(() => 'sparse'),
      // Never integral: transformers' strict config refuses an int for a float field.
      route_scale: 1.25 + (s.experts % 3) / 2,
    }),
  },
};
