// The building blocks the model-type files share: tensor layout families (spec/layouts.md
// §1), config-field readers and MoE-layer rules, routing constructors (§2).
import { ModelConfig } from '../../checkpoint/config.js';
import type { ExpertActivation, Routing } from '../semantics.js';
import type { Features, LayoutName, ModelEntry, ModuleLayout, MoeDims, TensorSpec } from '../model-type.js';
import { LayoutConfigError } from '../errors.js';
import { concat, flattenLeading, interleave, part, stackExperts, transposeLast, type Op } from '../ops.js';

export const t = (key: string, op: Op, when?: (f: Features, layer: number) => boolean): TensorSpec => ({ key, op, ...(when ? { when } : {}) });
export const shared = (f: Features) => f.sharedExpert;

// ---- tensors, by layout family ----

/** A. per expert, w1 gate / w3 up / w2 down. */
export const perExpertW = [
  t('experts.{e}.w1.weight', part('gate')),
  t('experts.{e}.w3.weight', part('up')),
  t('experts.{e}.w2.weight', part('down')),
];
/** B. per expert, gate_proj / up_proj / down_proj. */
export const perExpertProj = [
  t('experts.{e}.gate_proj.weight', part('gate')),
  t('experts.{e}.up_proj.weight', part('up')),
  t('experts.{e}.down_proj.weight', part('down')),
];
/** C. fused v5: gate_up_proj [E, 2I, H] gate rows first, down_proj [E, H, I]. */
export const fusedV5 = [
  t('experts.gate_up_proj', stackExperts(concat(0, part('gate'), part('up')))),
  t('experts.down_proj', stackExperts(part('down'))),
];
/** D. fused, transposed, concatenated: gate_up_proj [E, H, 2I], down_proj [E, I, H] (llama4). */
export const fusedTransposed = [
  t('experts.gate_up_proj', stackExperts(transposeLast(concat(0, part('gate'), part('up'))))),
  t('experts.down_proj', stackExperts(transposeLast(part('down')))),
];
/** E. fused, transposed, interleaved gate/up, with biases (gpt_oss). */
export const fusedInterleavedWithBias = [
  t('experts.gate_up_proj', stackExperts(transposeLast(interleave(0, part('gate'), part('up'))))),
  t('experts.gate_up_proj_bias', stackExperts(interleave(0, part('gate_bias'), part('up_bias')))),
  t('experts.down_proj', stackExperts(transposeLast(part('down')))),
  t('experts.down_proj_bias', stackExperts(part('down_bias'))),
];
/** F. granitemoe's original: input_linear [E, 2I, H] (gate half first), output_linear [E, H, I]. */
export const graniteLinear = [
  t('input_linear.weight', stackExperts(concat(0, part('gate'), part('up')))),
  t('output_linear.weight', stackExperts(part('down'))),
];
/** G. dbrx: w1 gate and v1 up [E*I, H]; w2 is down transposed, [E*I, H]. */
export const dbrxFlattened = [
  t('experts.mlp.w1', flattenLeading(stackExperts(part('gate')))),
  t('experts.mlp.v1', flattenLeading(stackExperts(part('up')))),
  t('experts.mlp.w2', flattenLeading(stackExperts(transposeLast(part('down'))))),
];

export const router = (key: string) => t(key, part('router'));
/** A shared expert stored as three projections under `name` (gate, up, down: `gate_proj`/`up_proj`/`down_proj`, or the reference's w1/w3/w2). */
export const sharedMlp = (name: string, [gate, up, down] = ['gate_proj', 'up_proj', 'down_proj']) => [
  t(`${name}.${gate}.weight`, part('shared_gate_proj'), shared),
  t(`${name}.${up}.weight`, part('shared_up_proj'), shared),
  t(`${name}.${down}.weight`, part('shared_down_proj'), shared),
];
export const correctionBias = (key: string, op: Op = part('correction_bias')) => t(key, op, (f) => f.correctionBias);

export const layer = (module: string) => `model.layers.{L}.${module}`;
export const same = (l: ModuleLayout): Record<LayoutName, ModuleLayout> => ({ original: l, fused: l });

// ---- config fields ----

export function list(c: ModelConfig, key: string): number[] | undefined {
  if (!c.has(key)) return undefined;
  const v = c.raw[key];
  if (v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x))) {
    throw new LayoutConfigError(`config field ${key} must be a list of integers`, { file: c.file, expected: 'integer list', found: v });
  }
  return v as number[];
}

/** A list of strings (`mlp_layer_types`, `layers_block_type`), or undefined when absent or null. */
export function stringList(c: ModelConfig, key: string): string[] | undefined {
  if (!c.has(key)) return undefined;
  const v = c.raw[key];
  if (v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new LayoutConfigError(`config field ${key} must be a list of strings`, { file: c.file, expected: 'string list', found: v });
  }
  return v as string[];
}

export const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** num_hidden_layers (n_layers for dbrx); nemotron_h saves it as null and lists layers_block_type instead. */
export const layerCount = (c: ModelConfig): number => {
  const listed = c.has(['num_hidden_layers', 'n_layers']) ? undefined : stringList(c, 'layers_block_type');
  return listed ? listed.length : c.int(['num_hidden_layers', 'n_layers']);
};
export const allLayers = (c: ModelConfig) => range(layerCount(c));

/** qwen2_moe, qwen3_moe, qwen3_next: sparse every `decoder_sparse_step` layers, except `mlp_only_layers`. */
export function qwenSparseLayers(c: ModelConfig): number[] {
  const step = c.int('decoder_sparse_step', 1);
  const dense = new Set(list(c, 'mlp_only_layers') ?? []);
  return allLayers(c).filter((i) => !dense.has(i) && step > 0 && (i + 1) % step === 0);
}
/** deepseek, glm4_moe, dots1: dense for the first `first_k_dense_replace` layers. */
export const afterFirstDense = (fallback: number) => (c: ModelConfig) =>
  allLayers(c).filter((i) => i >= c.int('first_k_dense_replace', fallback) && i % c.int('moe_layer_freq', 1) === 0);

/**
 * The layers whose entry of the string list `key` is `moe` (`mlp_layer_types: ["dense", "sparse"]`
 * and the like: `value` names the MoE entry); without the list, `fallback`.
 */
export const layersOfType = (key: string, value: string, fallback: (c: ModelConfig) => number[]) => (c: ModelConfig): number[] => {
  const types = stringList(c, key);
  if (types === undefined) return fallback(c);
  const n = layerCount(c);
  if (types.length !== n) {
    throw new LayoutConfigError(`config field ${key} must name every decoder layer`, { file: c.file, expected: `${n} entries`, found: types.length });
  }
  return range(n).filter((i) => types[i] === value);
};

export interface DimFields {
  experts: string | string[];
  intermediate: string | string[];
  topK: string | string[];
  hidden?: string | string[];
  /** Shared-expert intermediate size, 0 for none. */
  shared?: (c: ModelConfig) => number;
  moeLayers?: (c: ModelConfig) => number[];
  features?: (c: ModelConfig) => Partial<Features>;
  /** Decoder layers where num_hidden_layers counts something else (longcat_flash: num_layers). */
  layers?: (c: ModelConfig) => number;
  /** Zero-compute (identity) experts after the real ones (longcat_flash). */
  zeroExperts?: (c: ModelConfig) => number;
}

const MAX_LAYERS = 1 << 16;

export function dimsFrom(f: DimFields): (c: ModelConfig) => MoeDims {
  return (c) => {
    // Layer lists are built from num_hidden_layers: bound it before anything is allocated.
    const layers = f.layers ? f.layers(c) : layerCount(c);
    if (layers > MAX_LAYERS) {
      throw new LayoutConfigError('implausible number of layers', { file: c.file, expected: `<= ${MAX_LAYERS}`, found: layers });
    }
    const sharedIntermediate = f.shared ? f.shared(c) : 0;
    const features: Features = {
      sharedExpert: sharedIntermediate > 0,
      sharedGate: false,
      routerBias: false,
      correctionBias: false,
      expertBias: false,
      ...(f.features ? f.features(c) : {}),
    };
    const dims: MoeDims = {
      experts: c.int(f.experts),
      hidden: c.int(f.hidden ?? 'hidden_size'),
      intermediate: c.int(f.intermediate),
      sharedIntermediate,
      topK: c.int(f.topK),
      layers,
      moeLayers: f.moeLayers ? f.moeLayers(c) : range(layers),
      features,
      ...(f.zeroExperts ? { zeroExperts: f.zeroExperts(c) } : {}),
    };
    // The config's own field names in the message (num_local_experts, not experts).
    const fields: Partial<Record<keyof MoeDims, string | string[]>> = { experts: f.experts, hidden: f.hidden ?? 'hidden_size', intermediate: f.intermediate, topK: f.topK, layers: 'num_hidden_layers' };
    for (const [k, v] of Object.entries(dims)) {
      if (typeof v === 'number' && (v < (k === 'sharedIntermediate' ? 0 : 1) || !Number.isSafeInteger(v))) {
        const field = fields[k as keyof MoeDims];
        const named = field === undefined ? k : [field].flat().join(' / ');
        throw new LayoutConfigError(`config gives an invalid ${named}`, { file: c.file, expected: k === 'sharedIntermediate' ? 'an integer >= 0' : 'a positive integer', found: v });
      }
    }
    if (dims.topK > dims.experts) {
      throw new LayoutConfigError('top-k exceeds the number of experts', { file: c.file, expected: `<= ${dims.experts}`, found: dims.topK });
    }
    return dims;
  };
}

/** MoE sizes under Mixtral's config names, which minimax, phimoe and granitemoe share. */
export const mixtralDims = dimsFrom({ experts: 'num_local_experts', intermediate: 'intermediate_size', topK: 'num_experts_per_tok' });

// ---- routing and activation ----

export const renormalizedSoftmax = (): Routing => ({ kind: 'softmax_topk', renormalize: true, scaling: 1 });
export const softmaxNormTopk = (fallback: boolean) => (c: ModelConfig): Routing => ({
  kind: 'softmax_topk',
  renormalize: c.bool('norm_topk_prob', fallback),
  scaling: 1,
});
export const sigmoidGrouped = (d: { groups: number; topkGroups: number; norm: boolean; scaling: number }) => (c: ModelConfig): Routing => ({
  kind: 'sigmoid_group_limited_bias',
  // kimi_linear saves n_group and norm_topk_prob under its own names (attribute_map).
  groups: c.int(['n_group', 'num_expert_group'], d.groups),
  topkGroups: c.int('topk_group', d.topkGroups),
  renormalize: c.bool(['norm_topk_prob', 'moe_renormalize'], d.norm),
  scaling: c.num('routed_scaling_factor', d.scaling),
});
export const siluGated = (): ExpertActivation => ({ kind: 'silu_gated' });

// ---- generator configs ----

/** Mixtral's config names for the sizes (minimax, phimoe, granitemoe, gpt_oss, ...). */
export const mixtralConfig = (s: { hidden: number; layers: number; topK: number; experts: number; intermediate: number }) => ({
  hidden_size: s.hidden,
  num_hidden_layers: s.layers,
  num_experts_per_tok: s.topK,
  num_local_experts: s.experts,
  intermediate_size: s.intermediate,
});

/** The deepseek family's names: routed experts, moe_intermediate_size, n_shared_experts as a multiple of I, groups. */
export const deepseekConfig = (s: Required<import('../model-type.js').ModelSizes>, shared: number) => ({
  hidden_size: s.hidden,
  num_hidden_layers: s.layers,
  num_experts_per_tok: s.topK,
  n_routed_experts: s.experts,
  moe_intermediate_size: s.intermediate,
  n_shared_experts: shared / s.intermediate,
  first_k_dense_replace: 0,
  n_group: s.groups,
  topk_group: s.topkGroups,
});

/** `mlp_layer_types` with every layer sparse (the generators' all-MoE checkpoints). */
export const allSparse = (s: { layers: number }) => ({ mlp_layer_types: Array.from({ length: s.layers }, () => 'sparse') });

/**
 * s = σ(l); top-k of s + correction bias; weights s[idx] / (sum + 1e-20) × scaling: the
 * group-limited rule with one group (minimax_m2, afmoe, hy_v3).
 */
export const sigmoidBiasRenormalized = (scaling: number): Routing => ({ kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: true, scaling });

// ---- text decoders of vision-language models ----

/**
 * Where a multimodal model keeps its text decoder: the config.json path of its config
 * (default text_config; qwen3_omni_moe: thinker_config.text_config), the prefix that replaces
 * `model.layers.` per layout (default model.language_model.layers.; the original layout's own
 * where transformers' conversion renames it), and top-level fields of generated configs.
 */
export interface TextPlace {
  config?: string[];
  layers?: Partial<Record<LayoutName, string>>;
  generatorFields?: Record<string, unknown>;
}

/** The text decoder's config (config.json's text_config, or `path`), read like a config of its own. */
export function textConfig(c: ModelConfig, path: string[] = ['text_config']): ModelConfig {
  let raw: unknown = c.raw;
  for (const k of path) raw = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>)[k] : undefined;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LayoutConfigError(`a multimodal config needs a ${path.join('.')} object`, { file: c.file, expected: `${path.join('.')} {...}`, found: raw });
  }
  return new ModelConfig({ model_type: `${c.modelType}_text`, ...(raw as Record<string, unknown>) }, c.file);
}

/**
 * A vision-language (or omni) model whose text decoder is `text` (described for the text
 * config, its layers under model.layers): sizes and routing from its text config, layers
 * under `place.layers` (default model.language_model.layers), generated configs nesting the
 * text fields where config.json does.
 */
export function textDecoderOf(modelType: string, text: ModelEntry, place: TextPlace = {}): ModelEntry {
  const path = place.config ?? ['text_config'];
  const tc = (c: ModelConfig) => textConfig(c, path);
  const moved = (l: ModuleLayout, n: LayoutName): ModuleLayout => ({ ...l, module: l.module.replace(/^model\.layers\./, place.layers?.[n] ?? 'model.language_model.layers.') });
  const original = moved(text.layouts.original, 'original');
  const same = text.layouts.fused === text.layouts.original && (place.layers?.original ?? '') === (place.layers?.fused ?? '');
  const nest = (v: Record<string, unknown>) => path.reduceRight<Record<string, unknown>>((inner, k) => ({ [k]: inner }), v);
  return {
    modelType,
    dims: (c) => text.dims(tc(c)),
    layouts: { original, fused: same ? original : moved(text.layouts.fused, 'fused') },
    routing: (c) => text.routing(tc(c)),
    activation: (c) => text.activation(tc(c)),
    ...(text.extra ? { extra: (c: ModelConfig, d: MoeDims) => text.extra!(tc(c), d) } : {}),
    generator: {
      ...text.generator,
      config: (s, shared) => ({ ...nest({ model_type: `${modelType}_text`, ...text.generator.config(s, shared) }), ...place.generatorFields }),
    },
    // The text decoder's size constraints hold inside the VL model too (glm4v_moe's shared expert).
    ...(text.constraints ? { constraints: text.constraints } : {}),
  };
}
