// zaya: every decoder layer's MoE block (ZayaSparseMoeBlock) has SwiGLU experts (v5 fused
// only: one layout) and an MLP router (ZayaRouter): r = down_proj(x) (+ bias), plus, in every
// layer but the first (use_eda), the router state carried from the previous layer's router
// × router_states_scale; the logits over E + 1 classes are out_proj(gelu(fc2(gelu(fc1(
// RMSNorm(r)))))). p = softmax; the choice is the top-k (transformers 5.17 allows k = 1 only)
// of p + balancing_biases; weights p[idx], not renormalised; class E is a skip expert: its
// weight is zeroed, it adds nothing (zeroExperts 1, zeroExpertsSkip). A block's forward thus
// needs the previous layer's router state (the fixtures record it as moe.L.router_state).
import type { ModelEntry } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { part } from '../ops.js';
import { allLayers, dimsFrom, fusedV5, layer, router, same, siluGated, t } from './common.js';

const stateLayers = (c: Parameters<ModelEntry['dims']>[0]) => allLayers(c).filter((l) => l !== 0);

const base = dimsFrom({
  experts: 'num_experts',
  intermediate: 'moe_intermediate_size',
  topK: 'num_experts_per_tok',
  zeroExperts: () => 1,
  features: (c) => ({ correctionBias: true, mlpRouter: { stateLayers: stateLayers(c) } }),
});

export const zaya: ModelEntry = {
  modelType: 'zaya',
  dims: (c) => {
    const routerHidden = c.int('router_hidden_size', 256);
    if (!(routerHidden >= 1)) throw new LayoutConfigError('config gives an invalid router_hidden_size', { file: c.file, expected: 'a positive integer', found: routerHidden });
    return { ...base(c), routerHidden };
  },
  layouts: same({
    module: layer('mlp'),
    tensors: [
      t('gate.down_proj.weight', part('router_down')),
      t('gate.down_proj.bias', part('router_down_bias')),
      t('gate.router_states_scale', part('router_state_scale'), (f, l) => f.mlpRouter?.stateLayers.includes(l) === true),
      t('gate.router_mlp.norm.weight', part('router_norm')),
      t('gate.router_mlp.fc1.weight', part('router_fc1')),
      t('gate.router_mlp.fc1.bias', part('router_fc1_bias')),
      t('gate.router_mlp.fc2.weight', part('router_fc2')),
      t('gate.router_mlp.fc2.bias', part('router_fc2_bias')),
      router('gate.router_mlp.out_proj.weight'),
      t('gate.balancing_biases', part('correction_bias')),
      ...fusedV5,
    ],
  }),
  routing: () => ({ kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 1 }),
  activation: siluGated,
  extra: (c, d) => ({
    experts: d.experts + 1,
    zeroExperts: 1,
    zeroExpertsSkip: true,
    mlpRouter: { hidden: d.routerHidden!, eps: c.num('rms_norm_eps', 1e-5), stateLayers: d.features.mlpRouter!.stateLayers },
  }),
  generator: {
    shared: 'none',
    topK: 1,
    config: (s) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_experts_per_tok: 1,
      num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      router_hidden_size: 4 + 2 * (s.experts % 5),
    }),
  },
};
