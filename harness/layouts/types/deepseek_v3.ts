// deepseek_v3 and the types that copy its MoE block (glm4_moe, dots1, glm4_moe_lite,
// deepseek_v32, glm_moe_dsa, exaone_moe, solar_open, mimo_v2_flash, kimi_linear): routed
// experts, optional shared experts (I × count, plain add), the selection-only
// e_score_correction_bias, sigmoid group-limited routing (group score = top-2 sum). They
// differ in config names and defaults, the bias's key, and which layers are MoE.
import type { ModelConfig } from '../../checkpoint/config.js';
import type { LayoutName, ModelEntry, ModelSizes, ModuleLayout, TensorSpec } from '../model-type.js';
import { afterFirstDense, correctionBias, dimsFrom, fusedV5, layer, perExpertProj, router, sharedMlp, sigmoidGrouped, siluGated } from './common.js';

export interface Dsv3Options {
  /** first_k_dense_replace when absent (the MoE-layer rule when `moeLayers` is not given). */
  firstDense: number;
  groups: number;
  topkGroups: number;
  norm: boolean;
  scaling: number;
  /** Config field of the routed expert count (default n_routed_experts). */
  experts?: string | string[];
  /** Config field of the shared expert count, and its default; null: the block has no shared expert. */
  sharedCount?: { field: string; fallback: number } | null;
  moeLayers?: (c: ModelConfig) => number[];
  /** Key of the correction bias relative to the block, per layout (default gate.e_score_correction_bias). */
  bias?: Record<LayoutName, string>;
  /** Per-expert tensors of the original layout (default gate_proj/up_proj/down_proj). */
  originalExperts?: TensorSpec[];
  /** The block's module relative to the decoder layer, per layout (default mlp). */
  module?: Record<LayoutName, string>;
  /** Config field(s) of top-k (default num_experts_per_tok). */
  topK?: string | string[];
  /** Whether transformers keeps the correction bias in F32 (`_keep_in_fp32_modules_strict`; default true). */
  biasF32?: boolean;
  /** Extra generator config fields (the type's MoE-layer list, renamed fields, ...). */
  generatorConfig?: (s: Required<ModelSizes>, shared: number) => Record<string, unknown>;
}

export const dsv3Like = (modelType: string, o: Dsv3Options): ModelEntry => {
  const sharedCount = o.sharedCount === undefined ? { field: 'n_shared_experts', fallback: 1 } : o.sharedCount;
  const bias = o.bias ?? { original: 'gate.e_score_correction_bias', fused: 'gate.e_score_correction_bias' };
  const module = o.module ?? { original: 'mlp', fused: 'mlp' };
  const blockOf = (l: LayoutName, experts: TensorSpec[]): ModuleLayout => ({
    module: layer(module[l]),
    tensors: [router('gate.weight'), correctionBias(bias[l]), ...experts, ...(sharedCount ? sharedMlp('shared_experts') : [])],
  });
  const expertsField = o.experts ?? 'n_routed_experts';
  return {
    modelType,
    dims: dimsFrom({
      experts: expertsField,
      intermediate: 'moe_intermediate_size',
      topK: o.topK ?? 'num_experts_per_tok',
      ...(sharedCount ? { shared: (c: ModelConfig) => c.int('moe_intermediate_size') * c.int(sharedCount.field, sharedCount.fallback) } : {}),
      moeLayers: o.moeLayers ?? afterFirstDense(o.firstDense),
      // DeepseekV3PreTrainedModel and its copies: _keep_in_fp32_modules_strict = ["e_score_correction_bias"].
      features: () => ({ correctionBias: true, correctionBiasF32: o.biasF32 !== false }),
    }),
    layouts: { original: blockOf('original', o.originalExperts ?? perExpertProj), fused: blockOf('fused', fusedV5) },
    routing: sigmoidGrouped(o),
    activation: siluGated,
    generator: {
      shared: sharedCount ? 'multiple_of_I' : 'none',
      grouped: true,
      config: (s, Is) => {
        const names = {
          hidden_size: s.hidden,
          num_hidden_layers: s.layers,
          [Array.isArray(o.topK) ? o.topK[0]! : (o.topK ?? 'num_experts_per_tok')]: s.topK,
          [Array.isArray(expertsField) ? expertsField[0]! : expertsField]: s.experts,
          moe_intermediate_size: s.intermediate,
          ...(sharedCount ? { [sharedCount.field]: Is / s.intermediate } : {}),
          first_k_dense_replace: 0,
          n_group: s.groups,
          topk_group: s.topkGroups,
        };
        return { ...names, ...(o.generatorConfig ? o.generatorConfig(s, Is) : {}) };
      },
    },
    // Their MoE blocks build shared_experts of moe_intermediate_size * n_shared_experts unconditionally.
    ...(sharedCount ? { constraints: { sharedRequired: true } } : {}),
  };
};

export const deepseek_v3 = dsv3Like('deepseek_v3', { firstDense: 3, groups: 8, topkGroups: 4, norm: true, scaling: 2.5 });
