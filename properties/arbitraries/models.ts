// Routing constraints on the sizes of each of the 20 model types, for the generators:
// whether routing is group-limited (`n_group` must divide E) and whether top-k is fixed.
// (Which shared-expert sizes a type can express is the writer's sharedSizeRule.)
export interface ModelTraits {
  /** Group-limited routing (deepseek family). */
  grouped: boolean;
  /** A fixed top-k (phimoe's sparsemixer is top-2). */
  topK?: number;
}

export const MODEL_TRAITS: Readonly<Record<string, ModelTraits>> = {
  mixtral: { grouped: false },
  minimax: { grouped: false },
  phimoe: { grouped: false, topK: 2 },
  lfm2_moe: { grouped: false },
  qwen2_moe: { grouped: false },
  qwen3_moe: { grouped: false },
  qwen3_next: { grouped: false },
  olmoe: { grouped: false },
  flex_olmo: { grouped: false },
  jamba: { grouped: false },
  deepseek_v2: { grouped: true },
  deepseek_v3: { grouped: true },
  glm4_moe: { grouped: true },
  dots1: { grouped: true },
  ernie4_5_moe: { grouped: false },
  hunyuan_v1_moe: { grouped: false },
  gpt_oss: { grouped: false },
  llama4_text: { grouped: false },
  granitemoe: { grouped: false },
  dbrx: { grouped: false },
};

export const ALL_MODEL_TYPES: readonly string[] = Object.keys(MODEL_TRAITS);
