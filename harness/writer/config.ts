// config.json for a generated checkpoint: every field the registry reads for the model
// type, under that type's own names, with every decoder layer an MoE layer. The test
// suite reads the result back through the registry and checks it gives the sizes asked for.
import { WriterInputError } from './errors.js';

export interface ModelSizes {
  modelType: string;
  experts: number;
  hidden: number;
  intermediate: number;
  /** Shared-expert intermediate size; 0 or absent for none (must fit the model type, see below). */
  sharedIntermediate?: number;
  topK: number;
  layers: number;
}

export type ConfigDtype = 'float32' | 'bfloat16' | 'float16';

/** The shared-expert sizes each model type can express, relative to the expert size `I`. */
export function sharedSizeRule(modelType: string): 'none' | 'free' | 'equals_I' | 'multiple_of_I' {
  switch (modelType) {
    case 'qwen2_moe':
    case 'qwen3_next':
      return 'free';
    case 'llama4_text':
    case 'hunyuan_v1_moe':
      return 'equals_I';
    case 'deepseek_v2':
    case 'deepseek_v3':
    case 'glm4_moe':
    case 'dots1':
    case 'ernie4_5_moe':
      return 'multiple_of_I';
    default:
      return 'none';
  }
}

/** A config.json for these sizes; `overrides` (routing parameters, ...) are merged last. */
export function buildConfig(s: ModelSizes, dtype: ConfigDtype, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const Is = sharedSizeFor(s);
  const n = s.layers;
  const common = { hidden_size: s.hidden, num_hidden_layers: n, num_experts_per_tok: s.topK };
  const byType: Record<string, () => Record<string, unknown>> = {
    mixtral: () => ({ ...common, num_local_experts: s.experts, intermediate_size: s.intermediate }),
    minimax: () => ({ ...common, num_local_experts: s.experts, intermediate_size: s.intermediate }),
    phimoe: () => ({ ...common, num_local_experts: s.experts, intermediate_size: s.intermediate }),
    granitemoe: () => ({ ...common, num_local_experts: s.experts, intermediate_size: s.intermediate }),
    gpt_oss: () => ({ ...common, num_local_experts: s.experts, intermediate_size: s.intermediate }),
    llama4_text: () => ({
      ...common,
      num_local_experts: s.experts,
      intermediate_size: s.intermediate,
      interleave_moe_layer_step: 1,
      moe_layers: range(n),
    }),
    olmoe: () => ({ ...common, num_experts: s.experts, intermediate_size: s.intermediate }),
    flex_olmo: () => ({ ...common, num_experts: s.experts, intermediate_size: s.intermediate }),
    jamba: () => ({ ...common, num_experts: s.experts, intermediate_size: s.intermediate, expert_layer_period: 1, expert_layer_offset: 0 }),
    qwen3_moe: () => ({ ...common, num_experts: s.experts, moe_intermediate_size: s.intermediate, decoder_sparse_step: 1, mlp_only_layers: [] }),
    qwen2_moe: () => qwenShared(),
    qwen3_next: () => qwenShared(),
    deepseek_v2: () => deepseek(),
    deepseek_v3: () => deepseek(),
    glm4_moe: () => deepseek(),
    dots1: () => deepseek(),
    ernie4_5_moe: () => ({
      hidden_size: s.hidden,
      num_hidden_layers: n,
      moe_num_experts: s.experts,
      moe_intermediate_size: s.intermediate,
      moe_k: s.topK,
      moe_num_shared_experts: Is / s.intermediate,
      moe_layer_start_index: 0,
      moe_layer_interval: 1,
    }),
    hunyuan_v1_moe: () => ({ hidden_size: s.hidden, num_hidden_layers: n, num_experts: s.experts, intermediate_size: s.intermediate, moe_topk: s.topK }),
    lfm2_moe: () => ({ ...common, num_experts: s.experts, moe_intermediate_size: s.intermediate, num_dense_layers: 0, use_expert_bias: true }),
    dbrx: () => ({
      d_model: s.hidden,
      n_layers: n,
      ffn_config: { moe_num_experts: s.experts, ffn_hidden_size: s.intermediate, moe_top_k: s.topK },
    }),
  };
  const qwenShared = () => ({
    ...common,
    num_experts: s.experts,
    moe_intermediate_size: s.intermediate,
    shared_expert_intermediate_size: Is,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
  });
  const deepseek = () => ({
    ...common,
    n_routed_experts: s.experts,
    moe_intermediate_size: s.intermediate,
    n_shared_experts: Is / s.intermediate,
    first_k_dense_replace: 0,
    n_group: 1,
    topk_group: 1,
  });
  const fields = byType[s.modelType];
  if (!fields) throw new WriterInputError('cannot build a config for this model type', { expected: Object.keys(byType).join('|'), found: s.modelType });
  return { model_type: s.modelType, dtype, ...fields(), ...overrides };
}

/** The shared size the model type will read back, or a refusal if it cannot express the one asked for. */
function sharedSizeFor(s: ModelSizes): number {
  const asked = s.sharedIntermediate ?? 0;
  const rule = sharedSizeRule(s.modelType);
  const refuse = (expected: string) => {
    throw new WriterInputError(`${s.modelType} cannot have this shared-expert size`, { expected, found: asked });
  };
  if (rule === 'none' && asked !== 0) refuse('0 (no shared expert)');
  if (rule === 'equals_I' && asked !== 0 && asked !== s.intermediate) refuse(`Is = I = ${s.intermediate} (or absent)`);
  if (rule === 'multiple_of_I' && asked % s.intermediate !== 0) refuse(`a multiple of I = ${s.intermediate}`);
  return rule === 'equals_I' ? s.intermediate : asked;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
