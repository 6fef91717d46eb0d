// What describes one model type, as data: which decoder layers hold an MoE block, the
// config.json fields that give its sizes, the tensors of its MoE module in the
// architecture's historical ("original") layout and in the transformers v5 ("fused")
// layout (trees of the reversible operations of ops.ts), what the block computes
// (semantics.ts), and how to write a config.json for given sizes. Each model type fills
// this in once, in its own file under types/; the loader, the writer, the kernels and the
// generators read nothing else about it.
import type { ModelConfig } from '../checkpoint/config.js';
import type { ExpertActivation, MoeSemantics, Routing } from './semantics.js';
import type { Op, PartSizes } from './ops.js';

export type LayoutName = 'original' | 'fused';
export const LAYOUT_NAMES: readonly LayoutName[] = ['original', 'fused'];

/** Which optional tensors a model's MoE block has. */
export interface Features {
  sharedExpert: boolean;
  sharedGate: boolean;
  routerBias: boolean;
  correctionBias: boolean;
  /**
   * transformers keeps the correction bias in float32 whatever the model's dtype
   * (`_keep_in_fp32_modules_strict`): a bf16 checkpoint stores it as F32, and a loader must
   * not narrow it. Generated checkpoints do the same.
   */
  correctionBiasF32?: boolean;
  expertBias: boolean;
  /** Routed and shared experts are non-gated (up and down only, nemotron_h): canonical `w13` holds the up rows only. */
  nonGated?: boolean;
  /** nemotron_h's latent MoE (moe_latent_size): canonical latent.fc1 [D, H] and latent.fc2 [H, D]; experts in D. */
  latent?: boolean;
  /** With nonGated: the shared expert is gated all the same (doge's dense SwiGLU MLP): shared.w13 holds gate and up. */
  gatedShared?: boolean;
  /** A bias `[H]` added to the block's output once per token (jetmoe): canonical `layers.L.output_bias`. */
  outputBias?: boolean;
  /** An RMSNorm `[H]` on the block's output, routed + shared (axk1): canonical `layers.L.output_norm`. */
  outputNorm?: boolean;
  /** A router bias the checkpoint stores but the model never adds (longcat_flash with router_bias): not canonical. */
  unusedRouterBias?: boolean;
  /**
   * gemma4: the router's input scale `[H]`, the experts' input norm weight `[H]` and per-expert
   * output scales `[E]`: canonical `router.input_scale`, `expert_input_norm`, `router.expert_scale`.
   */
  gemmaRouter?: boolean;
  /** inkling: a scale `[1]` of every routing weight (`gate.global_scale`): canonical `router.global_scale`. */
  routerGlobalScale?: boolean;
  /**
   * MoE layers routed by a fixed table of expert ids per token id (deepseek_v4's hash_moe):
   * they store `tid2eid [vocab, K]` (canonical `layers.L.router.tid2eid`) and no correction bias.
   */
  hashLayers?: number[];
  /**
   * An MLP router (zaya): canonical `router.down.*`, `router.norm`, `router.fc1.*`, `router.fc2.*`
   * beside `router.weight` (its out_proj); these layers' routers also add the state carried
   * from the previous layer, scaled by `router.state_scale`.
   */
  mlpRouter?: { stateLayers: number[] };
}

export interface MoeDims extends PartSizes {
  topK: number;
  /** Decoder layers in the checkpoint (`num_hidden_layers`). */
  layers: number;
  /** Decoder layer indices that hold an MoE block, ascending. */
  moeLayers: number[];
  features: Features;
}

/** One stored tensor: its key relative to the module (`{e}` stands for the expert id) and how it is composed. */
export interface TensorSpec {
  key: string;
  op: Op;
  /** Whether the tensor is stored, from the features and the MoE layer (deepseek_v4's hash layers differ). */
  when?: (f: Features, layer: number) => boolean;
  /**
   * A key starting with `../` is relative to the module's parent, the decoder layer (axk1's
   * original stores the block's output norm beside the block: `post_mlp_layernorm.weight`).
   *
   * A per-expert tensor (`{e}` key) stored for the zero-compute experts too (longcat_flash's
   * gate/up of experts E..E+Z-1): dead weights, shape-checked, written as zeros, never loaded.
   */
  zeroExpertsToo?: boolean;
}

/** The MoE module of one layer in one layout: its key prefix (`{L}` is the layer) and its tensors. */
export interface ModuleLayout {
  module: string;
  tensors: TensorSpec[];
}

/** The sizes of a generated checkpoint (the writer's config builder and the generators). */
export interface ModelSizes {
  modelType: string;
  experts: number;
  hidden: number;
  intermediate: number;
  /** Shared-expert intermediate size; 0 or absent for none (must fit the model type's `shared` rule). */
  sharedIntermediate?: number;
  topK: number;
  layers: number;
  /** Expert groups of group-limited routing (1 or absent: one group). */
  groups?: number;
  topkGroups?: number;
}

/** The shared-expert sizes a model type can express, relative to the expert size `I`. */
/** positive_multiple_of_I: the block always has a shared expert, of 1, 2, ... times I. */
export type SharedRule = 'none' | 'free' | 'equals_I' | 'multiple_of_I' | 'positive_multiple_of_I';

/** How the writer and the generators make checkpoints of a type. */
export interface GeneratorTraits {
  shared: SharedRule;
  /** Group-limited routing: the number of groups must divide E (and the type's config names it). */
  grouped?: boolean;
  /** A fixed top-k (phimoe's sparsemixer is top-2). */
  topK?: number;
  /** A fixed expert intermediate size (doge's single-neuron experts: 1). */
  intermediate?: number;
  /** The most experts a token can choose among E (doge's product keys reach floor(√E)²). */
  maxTopK?: (experts: number) => number;
  /**
   * The config.json fields for these sizes under the type's own names, every decoder layer an
   * MoE layer; `shared` is the shared-expert size already checked against the rule.
   */
  config(s: Required<ModelSizes>, shared: number): Record<string, unknown>;
}

export interface ModelEntry {
  modelType: string;
  dims(c: ModelConfig): MoeDims;
  layouts: Record<LayoutName, ModuleLayout>;
  routing(c: ModelConfig): Routing;
  activation(c: ModelConfig): ExpertActivation;
  /** Semantics beyond routing and activation (shared-expert activation, ...), where the type has them. */
  extra?(c: ModelConfig, d: MoeDims): Partial<MoeSemantics>;
  generator: GeneratorTraits;
  /** Sizes outside which the type's reference implementation builds no such MoE block (absent: none beyond the dims' own). */
  constraints?: SizeConstraints;
}

/**
 * What transformers (the reference implementation) needs to build a config as this MoE
 * block: the generators draw only inside these, and golden/tools/check_generated_configs.py
 * checks every type's generated configs against transformers (record: golden/generated-configs.json).
 */
export interface SizeConstraints {
  /** Fewest routed experts (jamba builds a dense MLP, not an MoE block, for num_experts 1). */
  minExperts?: number;
  /** The shared expert is built whatever its count: n_shared_experts 0 makes a zero-width module, so at least one. */
  sharedRequired?: boolean;
}
