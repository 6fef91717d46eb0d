// MoE text decoders of transformers 5.17 that the canonical form cannot hold, each with the
// reason a loader is given (spec/loader-protocol.md §1, "Model types refused"): a config.json
// of one of these types is refused by name, never read as something it is not.
export const REFUSED_TYPES: Readonly<Record<string, string>> = {
  // Ernie4_5_VLMoeMoeBlock: text_moe and vision_moe, each a router (gate.weight [E, H], its
  // own moe_statics correction bias) and E experts of its own intermediate size
  // (moe_intermediate_size[0] / [1]), chosen per token by moe_mm_token_type_ids; the original
  // stores both sets as experts 0..E-1 and E..2E-1 of one list, the routers as gate.weight and
  // gate.weight_1 transposed [H, E], the two biases as one [2, E] tensor.
  ernie4_5_vl_moe:
    'two routed expert sets per MoE layer (text_moe and vision_moe, chosen per token by its modality); the canonical form holds one set per layer, and a text-only reading would drop the vision experts silently',
  // DiffusionGemmaModel: an encoder and a decoder stack (model.encoder.layers.L,
  // model.decoder.layers.L), every layer with gemma4_text's router and experts.
  diffusion_gemma:
    'a block-diffusion encoder-decoder: two stacks of MoE layers (encoder and decoder) whose layer indices coincide, while canonical names layers.L hold one stack; its blocks are gemma4_text\'s',
};
