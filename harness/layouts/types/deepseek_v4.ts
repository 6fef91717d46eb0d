// deepseek_v4: every decoder layer holds an MoE block (routed experts, one shared MLP of
// moe_intermediate_size, plain add), with clamped SwiGLU in both (DeepseekV4Experts /
// DeepseekV4MLP: silu(min(g, swiglu_limit)) · clamp(u, ±swiglu_limit)). The router scores
// s = scoring_func(l) (sqrtsoftplus by default, or sigmoid: ACT2FN has no softmax, so
// transformers 5.17 builds no softmax-scored model); weights s[idx] / (sum + 1e-20) ×
// routed_scaling_factor, always renormalised (norm_topk_prob is not read). mlp_layer_types
// says per layer: "moe" layers choose the top-k of s + e_score_correction_bias;
// "hash_moe" layers (DeepseekV4HashRouter, default the first 3) take the experts of each
// token from the buffer tid2eid[input_ids] ([vocab_size, K], I64) and store no correction
// bias: their forward needs the token ids (spec/loader-protocol.md §1).
// The published (original) layout is the reference implementation's: layers.L.ffn.,
// experts.{e}.w1/w3/w2, gate.bias (conversion_mapping.py "deepseek_v4").
import type { ModelConfig } from '../../checkpoint/config.js';
import type { Features, LayoutName, ModelEntry, ModuleLayout, TensorSpec } from '../model-type.js';
import type { ExpertActivation } from '../semantics.js';
import { LayoutConfigError } from '../errors.js';
import { part } from '../ops.js';
import { allLayers, deepseekConfig, dimsFrom, fusedV5, perExpertW, range, router, sharedMlp, stringList, t } from './common.js';

const hashLayer = (f: Features, layer: number) => f.hashLayers?.includes(layer) === true;

/** mlp_layer_types, as DeepseekV4Config.__post_init__ fills it: default 3 × hash_moe, then moe. */
function mlpLayerTypes(c: ModelConfig): string[] {
  const n = allLayers(c).length;
  const types = stringList(c, 'mlp_layer_types') ?? range(n).map((i) => (i < c.int('num_hash_layers', 3) ? 'hash_moe' : 'moe'));
  const bad = types.find((x) => x !== 'hash_moe' && x !== 'moe');
  if (types.length < n || bad !== undefined) {
    throw new LayoutConfigError('mlp_layer_types must name every layer hash_moe or moe', { file: c.file, expected: `${n} of hash_moe|moe`, found: bad ?? types.length });
  }
  return types.slice(0, n);
}

const hashLayers = (c: ModelConfig) => range(allLayers(c).length).filter((i) => mlpLayerTypes(c)[i] === 'hash_moe');

const routerTensors = (bias: string): TensorSpec[] => [
  router('gate.weight'),
  t(bias, part('correction_bias'), (f, l) => f.correctionBias && !hashLayer(f, l)),
  t('gate.tid2eid', part('tid2eid'), hashLayer),
];
const BLOCK: Record<LayoutName, ModuleLayout> = {
  original: {
    module: 'layers.{L}.ffn',
    tensors: [
      ...routerTensors('gate.bias'),
      ...perExpertW,
      ...sharedMlp('shared_experts', ['w1', 'w3', 'w2']),
    ],
  },
  fused: {
    module: 'model.layers.{L}.mlp',
    tensors: [
      ...routerTensors('gate.e_score_correction_bias'),
      ...fusedV5,
      ...sharedMlp('shared_experts'),
    ],
  },
};

function clampedSwiglu(c: ModelConfig): ExpertActivation {
  const act = c.str('hidden_act', 'silu');
  if (act !== 'silu') throw new LayoutConfigError('deepseek_v4 experts are supported with silu only', { file: c.file, expected: 'hidden_act silu', found: act });
  return { kind: 'silu_clamped', limit: c.num('swiglu_limit', 10) };
}

function score(c: ModelConfig): 'sigmoid' | 'sqrtsoftplus' {
  const f = c.str('scoring_func', 'sqrtsoftplus');
  if (f !== 'sigmoid' && f !== 'sqrtsoftplus') {
    // DeepseekV4TopKRouter scores with ACT2FN[scoring_func]: "softmax" is not an activation there.
    throw new LayoutConfigError('deepseek_v4 routers score with sqrtsoftplus or sigmoid (transformers 5.17 builds no other)', { file: c.file, expected: 'scoring_func sqrtsoftplus|sigmoid', found: f });
  }
  return f;
}

const base = dimsFrom({
  experts: ['n_routed_experts', 'num_local_experts'],
  intermediate: 'moe_intermediate_size',
  topK: 'num_experts_per_tok',
  // DeepseekV4MLP: one shared MLP of intermediate_size (= moe_intermediate_size), whatever n_shared_experts says.
  shared: (c) => c.int('moe_intermediate_size'),
  features: (c) => ({ correctionBias: true, correctionBiasF32: true, hashLayers: hashLayers(c) }),
});

export const deepseek_v4: ModelEntry = {
  modelType: 'deepseek_v4',
  dims: (c) => {
    const d = base(c);
    if (!d.features.hashLayers?.length) return d;
    const vocab = c.int('vocab_size');
    if (!(vocab >= 1)) throw new LayoutConfigError('config gives an invalid vocab_size', { file: c.file, expected: 'a positive integer', found: vocab });
    return { ...d, hashTable: { vocab, topK: d.topK } };
  },
  layouts: BLOCK,
  routing: (c) => ({ kind: 'score_bias_topk', score: score(c), scaling: c.num('routed_scaling_factor', 1.5) }),
  activation: clampedSwiglu,
  extra: (c, d) => ({
    sharedActivation: clampedSwiglu(c),
    ...(d.hashTable ? { hash: { layers: d.features.hashLayers!, vocab: d.hashTable.vocab } } : {}),
  }),
  generator: {
    shared: 'equals_I',
    config: (s, Is) => ({
      ...deepseekConfig(s, Is),
      // The first layer hash-routed (over a small vocabulary), the rest by score.
      mlp_layer_types: range(s.layers).map((i) => (i === 0 ? 'hash_moe' : 'moe')),
      vocab_size: 16 + s.experts,
      scoring_func: s.experts % 2 === 0 ? 'sqrtsoftplus' : 'sigmoid',
      swiglu_limit: 0.5 + (s.experts % 3),
    }),
  },
};
