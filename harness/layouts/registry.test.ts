// The registry's reading of config.json: MoE layer selection per model type, sizes, and
// the routing semantics (parameters and defaults) of spec/layouts.md §2.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { ConfigError } from '../checkpoint/errors.js';
import { LayoutConfigError, RefusedModelType, UnknownModelType } from './errors.js';
import { entryFor, MODEL_TYPES, modelSemanticsOf as semanticsOf } from './registry.js';
import type { ExpertActivation, MoeSemantics, Routing } from './semantics.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');
const fixtures = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const goldenConfig = (fixture: string) => new ModelConfig(JSON.parse(readFileSync(join(GOLDEN, fixture, 'original', 'config.json'), 'utf8')));

// Read by hand from each fixture's config.json and spec/layouts.md §2.
const ROUTING: Record<string, Routing> = {
  mixtral: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  minimax: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  hunyuan_v1_moe: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen2_moe: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  qwen3_moe: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen3_next: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  olmoe: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  flex_olmo: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  jamba: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  deepseek_v2: { kind: 'softmax_group_limited', groups: 2, topkGroups: 1, scaling: 1.5 },
  deepseek_v3: { kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: true, scaling: 2.5 },
  glm4_moe: { kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: true, scaling: 1.5 },
  dots1: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2 },
  ernie4_5_moe: { kind: 'softmax_bias_normmin', normMin: 0.5 },
  lfm2_moe: { kind: 'sigmoid_bias', renormalize: true, scaling: 1 },
  gpt_oss: { kind: 'topk_softmax' },
  granitemoe: { kind: 'topk_softmax' },
  llama4_text: { kind: 'topk_sigmoid_input' },
  dbrx: { kind: 'softmax_topk_pnorm', p: 1 },
  phimoe: { kind: 'sparsemixer', jitterEps: 0.01 },
  // Added from transformers 5.17 (golden/tools/make_fixtures.py NEW_SPECS).
  minimax_m2: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1 },
  glm4_moe_lite: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.8 },
  deepseek_v32: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
  glm_moe_dsa: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  exaone_moe: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.5 },
  solar_open: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2 },
  mimo_v2_flash: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  afmoe: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  hy_v3: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2.826 },
  granitemoeshared: { kind: 'topk_softmax' },
  granitemoehybrid: { kind: 'topk_softmax' },
  mellum: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  nemotron_h: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2, maskNegInf: true },
  mistral4: { kind: 'softmax_group_top2', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  // Sigmoid selection with the shared expert averaged in: routed weights × 0.5.
  cohere2_moe: { kind: 'topk_sigmoid', renormalize: true, scaling: 0.5 },
  laguna: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5, softcap: 2 },
  qwen3_5_moe_text: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen3_vl_moe: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  jetmoe: { kind: 'topk_softmax' },
  longcat_flash: { kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 2 },
  kimi_linear: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 2.446 },
  glm4v_moe: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  glm5_next: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5, maskNegInf: true },
  // Batch a of issue 14 (make_fixtures.py BATCH_A_SPECS).
  qwen3_omni_moe: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen4_exp_text: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen4_exp: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  deepseek_ocr2: { kind: 'softmax_group_limited', groups: 4, topkGroups: 2, scaling: 1.5 },
  granitemoe_swa: { kind: 'topk_softmax' },
  aria_text: { kind: 'topk_softmax' },
  aria: { kind: 'topk_softmax' },
  axk1: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  axk2: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5 },
  hy_v4: { kind: 'sigmoid_group_limited_bias', groups: 4, topkGroups: 2, renormalize: true, scaling: 1.5, maskNegInf: true },
  llama4: { kind: 'topk_sigmoid_input' },
  step3p7: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  minimax_m3_vl: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  gemma4_text: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  inkling_text: { kind: 'sigmoid_bias_shared', shared: 3, scaling: 1.5 },
  deepseek_v4: { kind: 'score_bias_topk', score: 'sqrtsoftplus', scaling: 1.5 },
  openai_privacy_filter: { kind: 'topk_softmax' },
  zaya: { kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 1 },
  doge: { kind: 'product_key', keys: 4, renormalize: true },
};

// The bf16 fixtures of these types were made with other routing options.
const ROUTING_BF16: Record<string, Routing> = {
  inkling_text: { kind: 'sigmoid_bias_shared', shared: 2, scaling: 2.5 },
  step3p7: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2 },
  minimax_m3_vl: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2 },
  deepseek_v2: { kind: 'softmax_group_limited', groups: 1, topkGroups: 1, scaling: 1.5 },
  dots1: { kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: false, scaling: 2 },
  ernie4_5_moe: { kind: 'softmax_bias_normmin', normMin: 1e-12 },
  flex_olmo: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  qwen3_next: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  glm4_moe_lite: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 1.8 },
  deepseek_v32: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2.5 },
  glm_moe_dsa: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  exaone_moe: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2.5 },
  solar_open: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 2 },
  // routed_scaling_factor null: 1.
  mimo_v2_flash: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1 },
  hy_v3: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.25 },
  mellum: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  nemotron_h: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 2, maskNegInf: true },
  mistral4: { kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 1.5 },
  cohere2_moe: { kind: 'topk_softmax' },
  laguna: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  kimi_linear: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 2.446 },
  glm4v_moe: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5 },
  glm5_next: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling: 1.5, maskNegInf: true },
  qwen3_omni_moe: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  qwen4_exp_text: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  qwen4_exp: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  // topk_method greedy: one group kept whole.
  deepseek_ocr2: { kind: 'softmax_group_limited', groups: 1, topkGroups: 1, scaling: 1.5 },
  axk1: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 1.5 },
  // n_group null (A.X-K2-Light): one group.
  axk2: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 1.5 },
  hy_v4: { kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 1.5, maskNegInf: true },
  deepseek_v4: { kind: 'score_bias_topk', score: 'sigmoid', scaling: 2 },
  doge: { kind: 'product_key', keys: 3, renormalize: false },
};

// Expert activations other than SiLU-gated, routed and shared (read from each modeling file).
const ACTIVATION: Record<string, { routed: ExpertActivation; shared?: ExpertActivation }> = {
  gpt_oss: { routed: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 } },
  nemotron_h: { routed: { kind: 'relu2' }, shared: { kind: 'relu2' } },
  glm5_next: { routed: { kind: 'silu_clamped', limit: 0.5 }, shared: { kind: 'silu_clamped', limit: 0.5 } },
  minimax_m3_vl: { routed: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.5 }, shared: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 0.5 } },
  gemma4_text: { routed: { kind: 'gelu_tanh_gated' } },
  // hy_v4: clamped routed experts, a plain SwiGLU shared MLP (HYV4MLP); bf16 fixture: swiglu_limit 0.75.
  hy_v4: { routed: { kind: 'silu_clamped', limit: 0.5 } },
  deepseek_v4: { routed: { kind: 'silu_clamped', limit: 0.5 }, shared: { kind: 'silu_clamped', limit: 0.5 } },
  openai_privacy_filter: { routed: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 } },
  doge: { routed: { kind: 'silu' } },
};
const ACTIVATION_BF16: Record<string, { routed: ExpertActivation; shared?: ExpertActivation }> = {
  minimax_m3_vl: { routed: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 1 }, shared: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 1 } },
  hy_v4: { routed: { kind: 'silu_clamped', limit: 0.75 } },
};
// Per-layer activations (step3p7's swiglu_limits / swiglu_limits_shared; 0 means no clamp).
const after = (limit: number): ExpertActivation => ({ kind: 'silu_clamped_after', limit });
const SILU: ExpertActivation = { kind: 'silu_gated' };
const LAYER_ACTIVATIONS: Record<string, MoeSemantics['layerActivations']> = {
  'step3p7-f32': { 1: { activation: after(0.5), sharedActivation: SILU }, 2: { activation: SILU, sharedActivation: after(0.7) } },
  'step3p7-bf16': { 0: { activation: after(0.6), sharedActivation: SILU }, 2: { activation: after(0.6), sharedActivation: after(0.4) } },
};

// The first 20 types' fixtures are E 8, H 48, I 20; the later ones E 12, H 32, I 16 (2I == H, E ≥ 11).
const FIRST_20 = new Set(['mixtral', 'minimax', 'hunyuan_v1_moe', 'qwen2_moe', 'qwen3_moe', 'qwen3_next', 'olmoe', 'flex_olmo', 'jamba', 'deepseek_v2', 'deepseek_v3', 'glm4_moe', 'dots1', 'ernie4_5_moe', 'lfm2_moe', 'gpt_oss', 'granitemoe', 'llama4_text', 'dbrx', 'phimoe']);

describe('semantics of the golden fixtures', () => {
  it('covers every registered model type, each with a fixture', () => {
    expect([...MODEL_TYPES].sort()).toEqual(Object.keys(ROUTING).sort());
    expect([...new Set(fixtures.map((f) => f.replace(/-(f32|bf16)$/, '')))].sort()).toEqual([...MODEL_TYPES].sort());
  });
  it.each(fixtures)('%s: routing, sizes and MoE layers', (fixture) => {
    const golden = JSON.parse(readFileSync(join(GOLDEN, fixture, 'golden.json'), 'utf8')) as { model_type: string; moe_layers: Record<string, string> };
    const s = semanticsOf(goldenConfig(fixture));
    expect(s.modelType).toBe(golden.model_type);
    expect(s.routing).toEqual((fixture.endsWith('bf16') ? ROUTING_BF16[golden.model_type] : undefined) ?? ROUTING[golden.model_type]);
    expect(s.moeLayers).toEqual(Object.keys(golden.moe_layers).map(Number));
    // qwen3_vl_moe: I 24, so that its published transposed shapes differ from v5's.
    // longcat_flash: its router scores 12 real and 4 zero-compute experts.
    // inkling_text: 12 routed and its shared experts (3 in f32, 2 in bf16); zaya: 12 experts and the skip class.
    const inklingShared = fixture.endsWith('f32') ? 3 : 2;
    // doge: single-neuron experts, 16 of them in f32.
    const later = {
      E: golden.model_type === 'longcat_flash' || fixture === 'doge-f32' ? 16 : golden.model_type === 'zaya' ? 13 : golden.model_type === 'inkling_text' ? 12 + inklingShared : 12,
      H: 32,
      I: golden.model_type === 'qwen3_vl_moe' ? 24 : golden.model_type === 'doge' ? 1 : 16,
    };
    expect({ E: s.experts, H: s.hidden, I: s.intermediate }).toEqual(FIRST_20.has(golden.model_type) ? { E: 8, H: 48, I: 20 } : later);
    expect(s.topK).toBe(['llama4_text', 'llama4', 'zaya'].includes(golden.model_type) ? 1 : golden.model_type === 'longcat_flash' || ['gemma4_text-bf16', 'openai_privacy_filter-bf16', 'doge-f32'].includes(fixture) ? 3 : 2);
    // gemma4: normalised router and expert inputs, per-expert output scales; inkling: router-weighted shared experts, I each.
    expect([s.sharedRouted, s.routerGlobalScale]).toEqual(golden.model_type === 'inkling_text' ? [inklingShared, true] : [undefined, undefined]);
    if (golden.model_type === 'inkling_text') expect(s.sharedIntermediate).toBe(inklingShared * 16);
    expect([s.inputNorms, s.expertOutputScale]).toEqual(golden.model_type === 'gemma4_text' ? [{ eps: fixture.endsWith('f32') ? 1e-6 : 1e-5 }, true] : [undefined, undefined]);
    expect(s.zeroExperts).toBe(golden.model_type === 'longcat_flash' ? 4 : golden.model_type === 'zaya' ? 1 : undefined);
    expect(s.zeroExpertsSkip).toBe(golden.model_type === 'zaya' ? true : undefined);
    expect(s.mlpRouter).toEqual(golden.model_type === 'zaya' ? { hidden: fixture.endsWith('f32') ? 24 : 8, eps: 1e-5, stateLayers: [1, 2] } : undefined);
    expect(s.sharedGate).toBe(['qwen2_moe', 'qwen3_next', 'qwen3_5_moe_text', 'qwen4_exp_text', 'qwen4_exp'].includes(golden.model_type));
    const act = (fixture.endsWith('bf16') ? ACTIVATION_BF16[golden.model_type] : undefined) ?? ACTIVATION[golden.model_type];
    expect(s.activation).toEqual(act?.routed ?? { kind: 'silu_gated' });
    expect(s.sharedActivation).toEqual(act?.shared);
    expect(s.layerActivations).toEqual(LAYER_ACTIVATIONS[fixture]);
    expect(s.sharedScale).toEqual(fixture === 'cohere2_moe-f32' ? 0.5 : undefined);
    // axk1's post_mlp_layernorm, eps rms_norm_eps (1e-6 in the f32 fixture, 1e-5 in the bf16 one).
    expect(s.outputNorm).toEqual(golden.model_type === 'axk1' ? { eps: fixture.endsWith('f32') ? 1e-6 : 1e-5 } : undefined);
    // deepseek_v4: the hash-routed layer (mlp_layer_types hash_moe) over the 96-token vocabulary.
    expect(s.hash).toEqual(golden.model_type === 'deepseek_v4' ? { layers: [fixture.endsWith('f32') ? 0 : 1], vocab: 96 } : undefined);
  });
});

const config = (raw: Record<string, unknown>) => new ModelConfig(raw);
const base = { hidden_size: 8, num_experts_per_tok: 2 };

describe('MoE layer selection', () => {
  const cases: Array<[string, Record<string, unknown>, number[]]> = [
    ['qwen2_moe: every 2nd layer, minus mlp_only_layers', { model_type: 'qwen2_moe', ...base, num_hidden_layers: 6, num_experts: 4, moe_intermediate_size: 4, shared_expert_intermediate_size: 4, decoder_sparse_step: 2, mlp_only_layers: [3] }, [1, 5]],
    ['deepseek_v3: dense before first_k_dense_replace', { model_type: 'deepseek_v3', ...base, num_hidden_layers: 5, n_routed_experts: 4, moe_intermediate_size: 4, first_k_dense_replace: 2 }, [2, 3, 4]],
    ['jamba: period and offset', { model_type: 'jamba', ...base, num_hidden_layers: 6, num_experts: 4, intermediate_size: 4, expert_layer_period: 2, expert_layer_offset: 1 }, [1, 3, 5]],
    ['llama4_text: interleave step', { model_type: 'llama4_text', ...base, num_hidden_layers: 6, num_local_experts: 4, intermediate_size: 4, interleave_moe_layer_step: 2 }, [1, 3, 5]],
    ['llama4_text: explicit moe_layers', { model_type: 'llama4_text', ...base, num_hidden_layers: 6, num_local_experts: 4, intermediate_size: 4, moe_layers: [4, 0] }, [0, 4]],
    ['ernie4_5_moe: start index and interval', { model_type: 'ernie4_5_moe', hidden_size: 8, num_hidden_layers: 6, moe_num_experts: 4, moe_intermediate_size: 4, moe_k: 2, moe_layer_start_index: 1, moe_layer_interval: 2 }, [1, 3, 5]],
    ['lfm2_moe: num_dense_layers (default 2)', { model_type: 'lfm2_moe', ...base, num_hidden_layers: 4, num_experts: 4, moe_intermediate_size: 4 }, [2, 3]],
    ['step3p7: legacy moe_layers_enum', { model_type: 'step3p7', text_config: { ...base, num_hidden_layers: 5, n_routed_experts: 4, moe_intermediate_size: 4, share_expert_dim: 4, moe_layers_enum: '1,3,4' } }, [1, 3, 4]],
    ['step3p7: from layer 3 without a list', { model_type: 'step3p7', text_config: { ...base, num_hidden_layers: 5, n_routed_experts: 4, moe_intermediate_size: 4, share_expert_dim: 4 } }, [3, 4]],
    ['gemma4_text: every layer with enable_moe_block', { model_type: 'gemma4_text', ...base, num_hidden_layers: 3, num_experts: 4, top_k_experts: 2, moe_intermediate_size: 4, enable_moe_block: true }, [0, 1, 2]],
    ['dbrx: every block', { model_type: 'dbrx', d_model: 8, n_layers: 3, ffn_config: { moe_num_experts: 4, ffn_hidden_size: 4, moe_top_k: 1 } }, [0, 1, 2]],
  ];
  it.each(cases)('%s', (_why, raw, layers) => {
    expect(semanticsOf(config(raw)).moeLayers).toEqual(layers);
  });
});

describe('defaults when a config field is absent', () => {
  it('deepseek_v3 takes n_group 8, topk_group 4, norm_topk_prob true, scaling 2.5', () => {
    const s = semanticsOf(config({ model_type: 'deepseek_v3', ...base, num_hidden_layers: 4, n_routed_experts: 16, moe_intermediate_size: 4 }));
    expect(s.routing).toEqual({ kind: 'sigmoid_group_limited_bias', groups: 8, topkGroups: 4, renormalize: true, scaling: 2.5 });
    expect(s.moeLayers).toEqual([3]);
    expect(s.sharedIntermediate).toBe(4);
  });
  it('phimoe takes router_jitter_noise 0.01; dbrx with moe_normalize_expert_weights null does not normalise', () => {
    expect(semanticsOf(config({ model_type: 'phimoe', ...base, num_hidden_layers: 1, num_local_experts: 4, intermediate_size: 4 })).routing).toEqual({ kind: 'sparsemixer', jitterEps: 0.01 });
    const dbrx = { model_type: 'dbrx', d_model: 8, n_layers: 1, ffn_config: { moe_num_experts: 4, ffn_hidden_size: 4, moe_top_k: 1, moe_normalize_expert_weights: null } };
    expect(semanticsOf(config(dbrx)).routing).toEqual({ kind: 'softmax_topk', renormalize: false, scaling: 1 });
  });
  it('deepseek_v2 greedy routing keeps one group whole', () => {
    const s = semanticsOf(config({ model_type: 'deepseek_v2', ...base, num_hidden_layers: 1, n_routed_experts: 4, moe_intermediate_size: 4 }));
    expect(s.routing).toEqual({ kind: 'softmax_group_limited', groups: 1, topkGroups: 1, scaling: 1 });
    expect(s.sharedIntermediate).toBe(0);
  });
});

describe('config refusals', () => {
  it('an unknown model type', () => {
    expect(() => entryFor('mixtral2')).toThrow(UnknownModelType);
    expect(() => entryFor('mixtral2')).not.toThrow(RefusedModelType);
  });
  it('names the config file the model_type was read from, unknown or refused', () => {
    const read = (model_type: string) => new ModelConfig({ model_type, ...base, num_hidden_layers: 1 }, '/ckpts/m/config.json');
    expect(() => semanticsOf(read('mixtral2'))).toThrow(expect.objectContaining({ file: '/ckpts/m/config.json', found: 'mixtral2' }));
    expect(() => semanticsOf(read('ernie4_5_vl_moe'))).toThrow(expect.objectContaining({ file: '/ckpts/m/config.json', found: 'ernie4_5_vl_moe' }));
  });
  it('ernie4_5_vl_moe (two expert sets by token type) is refused by name, with the reason', () => {
    expect(() => entryFor('ernie4_5_vl_moe')).toThrow(RefusedModelType);
    expect(() => entryFor('ernie4_5_vl_moe')).toThrow(/two routed expert sets per MoE layer/);
    expect(MODEL_TYPES).not.toContain('ernie4_5_vl_moe');
  });
  it('diffusion_gemma (encoder and decoder stacks of gemma4 MoE layers) is refused by name, with the reason', () => {
    expect(() => entryFor('diffusion_gemma')).toThrow(RefusedModelType);
    expect(() => entryFor('diffusion_gemma')).toThrow(/two stacks of MoE layers/);
  });
  it('a missing expert count, naming the field', () => {
    expect(() => semanticsOf(config({ model_type: 'mixtral', ...base, num_hidden_layers: 1, intermediate_size: 4 }))).toThrow(ConfigError);
  });
  it('an invalid size names the config\'s own field and the file it came from', () => {
    const bad = new ModelConfig({ model_type: 'mixtral', ...base, num_hidden_layers: 1, num_local_experts: -4, intermediate_size: 4 }, '/ckpt/config.json');
    expect(() => semanticsOf(bad)).toThrow('config gives an invalid num_local_experts (expected a positive integer, found -4) [file /ckpt/config.json]');
    const qwen = new ModelConfig({ model_type: 'qwen3_moe', ...base, num_hidden_layers: 1, num_experts: 0, moe_intermediate_size: 4 }, '/q/config.json');
    expect(() => semanticsOf(qwen)).toThrow(/invalid num_experts \/ num_local_experts .*\[file \/q\/config\.json\]/);
  });
  it('top-k above the expert count', () => {
    expect(() => semanticsOf(config({ model_type: 'mixtral', ...base, num_hidden_layers: 1, num_local_experts: 1, intermediate_size: 4 }))).toThrow(/top-k/);
  });
  it('semantics the kernels do not compute: inkling without a router-weighted shared expert, gemma4 experts without tanh GELU', () => {
    const inkling = { model_type: 'inkling_text', ...base, num_hidden_layers: 1, n_routed_experts: 4, moe_intermediate_size: 4 };
    expect(() => semanticsOf(config({ ...inkling, n_shared_experts: 0 }))).toThrow(LayoutConfigError);
    expect(() => semanticsOf(config({ ...inkling, n_shared_experts: 0 }))).toThrow(/n_shared_experts >= 1/);
    // transformers' default is two shared experts: one shared MLP of intermediate 2I.
    expect([semanticsOf(config(inkling)).sharedRouted, semanticsOf(config(inkling)).sharedIntermediate]).toEqual([2, 8]);
    expect(semanticsOf(config({ ...inkling, n_shared_experts: 1 })).sharedRouted).toBe(1);
    const gemma = { model_type: 'gemma4_text', ...base, num_hidden_layers: 1, num_experts: 4, top_k_experts: 2, moe_intermediate_size: 4, enable_moe_block: true };
    expect(() => semanticsOf(config({ ...gemma, hidden_activation: 'gelu' }))).toThrow(LayoutConfigError);
    expect(semanticsOf(config({ ...gemma, enable_moe_block: false })).moeLayers).toEqual([]);
  });
});

describe('the index of model types', () => {
  it('names each entry by its own model_type (the ModelType union is the index keys)', async () => {
    const { ENTRIES_BY_TYPE } = await import('./types/index.js');
    for (const [key, entry] of Object.entries(ENTRIES_BY_TYPE)) expect(entry.modelType, key).toBe(key);
    expect(MODEL_TYPES).toEqual(Object.keys(ENTRIES_BY_TYPE));
  });
});
