// minimax_m3_vl: the text decoder of the vision-language model (text_config). MiniMax-M2's
// sigmoid router (choice by s + e_score_correction_bias, top-k, renormalised) with the routed
// sum × routed_scaling_factor, experts with gpt_oss's clamped GLU on plain (not interleaved)
// gate/up halves, (clamp(u, ±L) + 1) · g · σ(α g), g = min(gate, L) (MiniMaxM3VLExperts;
// swiglu_alpha, swiglu_limit), and a shared expert with the same activation whose v5 form
// fuses gate and up in one Linear (shared_experts.gate_up_proj [2·Is, H]), plain add. MoE
// where mlp_layer_types says "sparse". The original (conversion_mapping "minimax_m3_vl")
// keeps Mixtral's per-expert w1/w3/w2 under language_model.model.layers.L.block_sparse_moe,
// with the bias at block level and the shared expert's gate_proj/up_proj apart.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { ModelEntry } from '../model-type.js';
import type { ExpertActivation } from '../semantics.js';
import { concat, part } from '../ops.js';
import { allLayers, correctionBias, dimsFrom, fusedV5, layersOfType, perExpertW, range, router, shared, sharedMlp, sigmoidBiasRenormalized, t, textDecoderOf } from './common.js';

const glu = (c: ModelConfig): ExpertActivation => ({ kind: 'gpt_oss_clamped', alpha: c.num('swiglu_alpha', 1.702), limit: c.num('swiglu_limit', 7) });

const text: ModelEntry = {
  modelType: 'minimax_m3_vl_text',
  dims: dimsFrom({
    experts: ['num_local_experts', 'num_experts'],
    intermediate: 'intermediate_size',
    topK: 'num_experts_per_tok',
    shared: (c) => c.int('shared_intermediate_size'),
    moeLayers: layersOfType('mlp_layer_types', 'sparse', allLayers),
    features: () => ({ correctionBias: true }),
  }),
  layouts: {
    original: {
      module: 'language_model.model.layers.{L}.block_sparse_moe',
      tensors: [router('gate.weight'), correctionBias('e_score_correction_bias'), ...perExpertW, ...sharedMlp('shared_experts')],
    },
    fused: {
      module: 'model.language_model.layers.{L}.mlp',
      tensors: [
        router('gate.weight'),
        correctionBias('gate.e_score_correction_bias'),
        ...fusedV5,
        t('shared_experts.gate_up_proj.weight', concat(0, part('shared_gate_proj'), part('shared_up_proj')), shared),
        t('shared_experts.down_proj.weight', part('shared_down_proj'), shared),
      ],
    },
  },
  routing: (c) => sigmoidBiasRenormalized(c.num('routed_scaling_factor', 2)),
  activation: glu,
  extra: (c) => ({ sharedActivation: glu(c) }),
  generator: {
    shared: 'free',
    config: (s, Is) => ({
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_local_experts: s.experts,
      intermediate_size: s.intermediate,
      shared_intermediate_size: Is,
      num_experts_per_tok: s.topK,
      mlp_layer_types: range(s.layers).map(() => 'sparse'),
      // Never integral: transformers' strict config refuses an int for a float field.
      routed_scaling_factor: 1.25 + (s.experts % 3) / 2,
      swiglu_limit: 0.5 + (s.experts % 3),
    }),
  },
};

export const minimax_m3_vl: ModelEntry = { ...textDecoderOf('minimax_m3_vl', text), layouts: text.layouts };
