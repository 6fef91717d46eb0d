// Deliberately wrong loaders, one per realistic bug of spec/layouts.md §3, and wrong
// forwards (routing mistakes of a kernel). Each wraps the reference loader (or forward) and
// corrupts its output exactly the way the bug would, so a test can prove the suite catches
// it, how many generated cases that took, and that the failure's diagnosis names the bug.
import type { ModelType } from '../../harness/layouts/registry.js';
import type { QuantGeometry } from '../../harness/layouts/ops.js';
import { ModelConfig } from '../../harness/checkpoint/config.js';
import { CheckpointDir } from '../../harness/checkpoint/directory.js';
import { isGated } from '../../harness/layouts/semantics.js';
import { semanticsOf } from '../../harness/quant/layout.js';
import { expertsOf, tpSlice } from '../../harness/canonical/cut.js';
import { referenceLoader } from '../../harness/loader/load.js';
import { decodeFloats64, encodeFloats } from '../../harness/safetensors/codecs.js';
import type { Canonical, Loader, ParallelRequest, Tensor } from '../../harness/tensor.js';
import type { DiagnosisKind } from '../../harness/compare/diagnose.js';
import { MoeConformanceError } from '../../harness/errors.js';
import { InvalidParallelRequest } from '../../harness/canonical/errors.js';
import type { MoeBackend } from '../../kernels/backend.js';
import { referenceForward } from '../../kernels/moe.js';
import { route, sigmoid, softmax, topK, type RoutingResult } from '../../kernels/routing.js';
import { memoLoader, recent } from '../memo.js';
import { QuantizedRouter } from '../../harness/quant/errors.js';
import { schemeOf } from '../../harness/quant/scheme.js';
import { MISREADINGS, requantizedToMaxScale } from '../../harness/compare/misreadings.js';
import type { QuantScheme } from '../../harness/quant/scheme.js';
import { int32s, int32Tensor, permuteRows, pickSlots, selectRows, transposeSquare } from './tensor-ops.js';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../../harness/safetensors/read.js';
import { writeSafetensors } from '../../harness/safetensors/write.js';

export interface Mutant {
  name: string;
  /** The bug, as it happens in a real loader. */
  bug: string;
  loader: Loader;
  /** Kernel-side mutants: the wrong forward (the loader is then the reference). */
  forward?: MoeBackend;
  /** The kind harness/compare/diagnose.ts (or properties/diagnose-forward.ts) must name for it. */
  diagnosis: DiagnosisKind;
  /** Suite settings other than the default, for a bug that only some sizes show (and why). */
  suite?: { capabilities: { modelTypes: ModelType[] }; cases: number; why: string };
}

export interface Model {
  modelType: string;
  hidden: number;
  intermediate: number;
  sharedIntermediate: number;
  experts: number;
  /** Non-gated experts (w13 is up rows only). */
  nonGated: boolean;
  /** Zero-compute experts among `experts` (the router's rows), 0 for most. */
  zeroExperts: number;
  /** Rows of an FP8 scale block, where the checkpoint has them. */
  blockRows?: number;
  /** The quantization of the routed experts, where they are quantized. */
  quant?: QuantGeometry;
}

const models = recent<Model>(64);
/** The reference's tensors, shared by all mutants: callers copy a map before changing it. */
const reference = memoLoader(referenceLoader, 256);

export function modelOf(dir: string): Promise<Model> {
  return models(dir, async () => {
    const sem = semanticsOf(await ModelConfig.read(dir));
    return {
      modelType: sem.modelType, hidden: sem.hidden, intermediate: sem.intermediate, sharedIntermediate: sem.sharedIntermediate, experts: sem.experts,
      nonGated: !isGated(sem.activation), zeroExperts: sem.zeroExperts ?? 0,
      ...(sem.quant?.method === 'fp8' && { blockRows: sem.quant.scaleBlock.rows }),
      ...(sem.quant && { quant: sem.quant }),
    };
  });
}

export const load = (dir: string, req: ParallelRequest) => reference.load(dir, req);
const layersOf = (c: Canonical) => [...new Set([...c.keys()].map((k) => Number(/^layers\.(\d+)\./.exec(k)?.[1])))].filter((n) => !Number.isNaN(n));

/** A mutant whose loader is `load` under the mutant's own name; its diagnosis comes from the DIAGNOSIS table. */
function mutant(name: string, bug: string, load: Loader['load']): Mutant {
  return { name, bug, loader: { name, load }, diagnosis: 'unknown' };
}



/** Applies `fix` to every tensor whose name ends with `suffix`. */
function mapTensors(c: Canonical, suffix: string, fix: (t: Tensor, name: string) => Tensor): Canonical {
  const out: Canonical = new Map(c);
  for (const [name, t] of c) if (name.endsWith(suffix)) out.set(name, fix(t, name));
  return out;
}

/** The correct TP rows of a gate-then-up tensor cut from its whole `[2*I, ...]` form. */
function gateUpRows(size: number, req: ParallelRequest): Array<[number, number]> {
  const [a, b] = tpSlice(size, req.tpSize, req.tpRank);
  return [
    [a, b],
    [size + a, size + b],
  ];
}

/** A mutant that loads the whole TP extent of the rank's experts, corrupts it, then cuts TP correctly. */
function fromTpWhole(name: string, bug: string, corrupt: (whole: Canonical, m: Model) => Canonical): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const m = await modelOf(dir);
    const whole = corrupt(await load(dir, { ...req, tpSize: 1, tpRank: 0 }), m);
    if (req.tpSize === 1) return whole;
    let out = mapTensors(whole, 'experts.w13', (t) => selectRows(t, gateUpRows(m.intermediate, req), true));
    out = mapTensors(out, 'experts.w13_bias', (t) => selectRows(t, gateUpRows(m.intermediate, req), true));
    out = mapTensors(out, 'experts.w2', (t) => cutColumns(t, req));
    out = mapTensors(out, 'shared.w13', (t) => selectRows(t, gateUpRows(m.sharedIntermediate, req), false));
    return mapTensors(out, 'shared.w2', (t) => cutColumns(t, req));
  });
}

/** The TP rank's columns (last axis). */
function cutColumns(t: Tensor, req: ParallelRequest): Tensor {
  const cols = t.shape[t.shape.length - 1]!;
  const [a, b] = tpSlice(cols, req.tpSize, req.tpRank);
  const flatRows = t.shape.slice(0, -1).reduce((x, y) => x * y, 1);
  const e = t.bytes.length / (flatRows * cols);
  const out = new Uint8Array(flatRows * (b - a) * e);
  for (let r = 0; r < flatRows; r++) out.set(t.bytes.subarray((r * cols + a) * e, (r * cols + b) * e), r * (b - a) * e);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, -1), b - a], bytes: out };
}

/** A mutant that loads every expert of the rank's TP slice (EP 1), then places experts its own way. */
function fromEpWhole(name: string, bug: string, place: (all: Canonical, req: ParallelRequest, m: Model, layer: number) => number[]): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const m = await modelOf(dir);
    const all = await load(dir, { ...req, epSize: 1, epRank: 0 });
    const out: Canonical = new Map(all);
    for (const L of layersOf(all)) {
      const slots = place(all, req, m, L);
      for (const [k, t] of all) if (k.startsWith(`layers.${L}.experts.`) && k !== `layers.${L}.experts.ids`) out.set(k, pickSlots(t, slots));
      out.set(`layers.${L}.experts.ids`, int32Tensor(slots.map((s) => int32s(all.get(`layers.${L}.experts.ids`)!)[s]!)));
    }
    return out;
  });
}

/** A mutant that corrupts the reference's output for the rank directly. */
function onOutput(name: string, bug: string, corrupt: (out: Canonical, req: ParallelRequest, m: Model) => Canonical): Mutant {
  return mutant(name, bug, async (dir, req) => corrupt(await load(dir, req), req, await modelOf(dir)));
}

/** Tensors ending in `suffix` cut for TP as one block of their gate-then-up axis, the rest as the reference does. */
function oneBlockCut(name: string, bug: string, suffix: string, stacked: boolean): Mutant {
  return mutant(name, bug, async (dir, req) => {
    const out = await load(dir, req);
    if (req.tpSize === 1) return out;
    const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
    const fixed = new Map(out);
    for (const [k, t] of whole) {
      if (!k.endsWith(suffix)) continue;
      const [a, b] = tpSlice(t.shape[stacked ? 1 : 0]!, req.tpSize, req.tpRank);
      fixed.set(k, selectRows(t, [[a, b]], stacked));
    }
    return fixed;
  });
}

/** The last expert's slot of every expert tensor (where `applies`) overwritten by `fill` over its bytes [from, to). */
function fillLastExpert(out: Canonical, m: Model, applies: (t: Tensor) => boolean, fill: (bytes: Uint8Array, from: number, to: number, t: Tensor) => void): Canonical {
  const fixed = new Map(out);
  for (const L of layersOf(out)) {
    const slot = int32s(out.get(`layers.${L}.experts.ids`)!).indexOf(m.experts - 1);
    if (slot < 0) continue;
    for (const [k, t] of out) {
      if (!k.startsWith(`layers.${L}.experts.`) || k.endsWith('.ids') || !applies(t)) continue;
      const bytes = t.bytes.slice();
      const per = bytes.length / t.shape[0]!;
      fill(bytes, slot * per, (slot + 1) * per, t);
      fixed.set(k, { ...t, bytes });
    }
  }
  return fixed;
}

const swapHalves = (t: Tensor, stacked: boolean) => {
  const rows = t.shape[stacked ? 1 : 0]!;
  return selectRows(t, [[rows / 2, rows], [0, rows / 2]], stacked);
};

/** The misreadings of harness/compare/misreadings.ts served as mutants: mutant name, misreading, bug; `only`: the schemes it is served on (default: every one it applies to). */
const MISREADING_MUTANTS: ReadonlyArray<{ name: string; id: string; bug: string; only?: (s: QuantScheme) => boolean }> = [
  { name: 'int4-zero-point-ignored', id: 'int4-zero-point-ignored', bug: 'asymmetric INT4 dequantized as if symmetric (zero 8 for every group): the zero points loaded but never applied' },
  { name: 'gptq-zeros-without-plus-one', id: 'gptq-zero-convention-confused', bug: 'GPTQ v1 zeros read as stored (as gptq_v2 stores them): AutoGPTQ writes zero - 1, so every group is off by one scale step', only: (s) => s.method === 'int4-gptq' && s.zerosMinusOne },
  { name: 'int4-g-idx-ignored', id: 'int4-g-idx-ignored', bug: 'activation-order g_idx ignored: each column dequantized with the group of its position (floor(column / group)), as a loader that drops g_idx does' },
  { name: 'int4-group-size-assumed-128', id: 'int4-group-size-assumed-128', bug: 'config.json\'s INT4 group_size (32, 64) ignored and 128 assumed: each column dequantized with the scale and zero of group floor(j / 128); loads cleanly, computes garbage' },
  { name: 'nvfp4-scale-2-applied-twice', id: 'nvfp4-scale-2-applied-twice', bug: 'NVFP4 weight_scale_2 applied twice (folded into the block scales and applied again as the GEMM alpha)' },
];

const LOADER_MUTANTS: readonly Mutant[] = [
  onOutput('swapped-gate-up', 'gate and up halves swapped (up-first stacking, as TensorRT-LLM stores w3_w1, read as gate-first)', (out) =>
    mapTensors(mapTensors(out, 'experts.w13', (t) => swapHalves(t, true)), 'shared.w13', (t) => swapHalves(t, false)),
  ),
  oneBlockCut('fused-axis-cut-in-one-piece', 'TP cuts the fused 2I axis of w13 in one piece instead of cutting gate and up separately', 'experts.w13', true),
  fromTpWhole('transposed-read-when-h-eq-2i', 'a shape-guessing loader reads the transposed [E,H,2I] gate_up_proj as [E,2I,H] when H == 2I (transformers issue 47031)', (whole, m) =>
    ['llama4_text', 'gpt_oss', 'qwen3_vl_moe'].includes(m.modelType) && m.hidden === 2 * m.intermediate ? mapTensors(whole, 'experts.w13', transposeSquare) : whole,
  ),
  fromTpWhole('interleaved-read-as-concatenated', 'gpt_oss gate/up interleaved on the 2I axis read as two concatenated halves (biases too)', (whole, m) => {
    if (m.modelType !== 'gpt_oss') return whole;
    // Stored rows g0 u0 g1 u1 ...; the bug takes the first half as gate: row i of the result is row 2i (mod 2I) of the truth's gate/up mix.
    const interleaved = (i: number, rows: number) => (i % 2 === 0 ? i / 2 : rows / 2 + (i - 1) / 2);
    return mapTensors(mapTensors(whole, 'experts.w13', (t) => permuteRows(t, interleaved, true)), 'experts.w13_bias', (t) => permuteRows(t, interleaved, true));
  }),
  fromEpWhole('ep-remainder-dropped', 'linear EP placement ignores E % P: every rank takes floor(E/P) experts from q*floor(E/P), the remainder experts are lost', (_all, req, m) => {
    const base = Math.floor(m.experts / req.epSize);
    return req.epPlacement === 'linear' ? Array.from({ length: base }, (_, i) => req.epRank * base + i) : expertsOf(m.experts, req.epSize, req.epRank, req.epPlacement);
  }),
  fromEpWhole('ep-ranks-reversed', 'EP rank q given the experts of rank P-1-q (start and end of the rank range swapped)', (_all, req, m) =>
    expertsOf(m.experts, req.epSize, req.epSize - 1 - req.epRank, req.epPlacement),
  ),
  fromEpWhole('expert-order-by-string', 'experts ordered by their key names as strings (expert 10 before expert 2)', (_all, req, m) => {
    const byString = Array.from({ length: m.experts }, (_, i) => i).sort((a, b) => (String(a) < String(b) ? -1 : 1));
    // Slot e holds the data of the e-th name in string order; the ids still read 0..E-1.
    return expertsOf(m.experts, req.epSize, req.epRank, req.epPlacement).map((e) => byString[e]!);
  }),
  onOutput('dropped-expert-as-zeros', 'the last expert of each layer silently loaded as zeros (its key names drifted and were not found)', (out, _req, m) =>
    fillLastExpert(out, m, () => true, (bytes, from, to) => bytes.fill(0, from, to)),
  ),
  onOutput('w2-bias-divided-per-rank', 'w2_bias split over TP ranks (divided by T, for an engine that adds it on every rank) instead of whole on every rank', (out, req) =>
    req.tpSize === 1 ? out : mapTensors(out, 'experts.w2_bias', (t) => ({ ...t, bytes: encodeFloats(t.dtype, decodeFloats64(t.dtype, t.bytes).map((v) => v / req.tpSize)) })),
  ),
  oneBlockCut('w13-bias-cut-in-one-piece', 'the gate/up bias cut for TP in one piece while the weights are cut gate and up separately', 'experts.w13_bias', true),
  onOutput('correction-bias-ignored', 'the selection-only correction bias (e_score_correction_bias / expert_bias) not loaded', (out) => {
    const fixed = new Map(out);
    for (const k of out.keys()) if (k.endsWith('router.correction_bias')) fixed.delete(k);
    return fixed;
  }),
  onOutput('correction-bias-narrowed', 'the F32 correction bias of a 16-bit checkpoint (transformers keeps e_score_correction_bias in float32) narrowed to the weights\' dtype', (out) => {
    const narrow = out.get([...out.keys()].find((k) => k.endsWith('experts.w13'))!)?.dtype;
    if (narrow !== 'BF16' && narrow !== 'F16') return out;
    return mapTensors(out, 'router.correction_bias', (t) => (t.dtype === 'F32' ? { ...t, dtype: narrow, bytes: encodeFloats(narrow, decodeFloats64('F32', t.bytes)) } : t));
  }),
  onOutput('non-gated-as-gated', 'non-gated experts (nemotron_h: up and down only) loaded as gated, the up rows standing in for a gate half as well', (out, _req, m) => {
    if (!m.nonGated) return out;
    const doubled = (t: Tensor, stacked: boolean) => {
      const rows = t.shape[stacked ? 1 : 0]!;
      return selectRows(t, [[0, rows], [0, rows]], stacked);
    };
    return mapTensors(mapTensors(out, 'experts.w13', (t) => doubled(t, true)), 'shared.w13', (t) => doubled(t, false));
  }),
  onOutput('zero-experts-dropped', 'the router cut to the real experts (longcat_flash\'s zero-compute experts lost from router.weight and the correction bias)', (out, _req, m) => {
    if (m.zeroExperts === 0) return out;
    const real = m.experts - m.zeroExperts;
    return mapTensors(mapTensors(out, 'router.weight', (t) => selectRows(t, [[0, real]], false)), 'router.correction_bias', (t) => ({ ...t, shape: [real], bytes: t.bytes.slice(0, (t.bytes.length / t.shape[0]!) * real) }));
  }),
  onOutput('router-cut-by-ep', 'the router weight cut to the rank\'s own experts, as if EP split it', (out) => {
    const fixed = new Map(out);
    for (const L of layersOf(out)) {
      const ids = int32s(out.get(`layers.${L}.experts.ids`)!);
      const router = out.get(`layers.${L}.router.weight`)!;
      if (ids.length !== router.shape[0]) fixed.set(`layers.${L}.router.weight`, pickSlots(router, ids));
    }
    return fixed;
  }),
  oneBlockCut('shared-expert-fused-cut', 'the shared expert\'s fused gate/up cut for TP in one piece', 'shared.w13', false),
  ...QUANT_MUTANTS(),
];

/** One value per expert projection (`w13_scale_2` [n, 2], `w2_input_scale` [n], ...) rewritten slot by slot as F32. */
function mapPerProjection(c: Canonical, suffix: string, f: (v: Float32Array, slots: number, perSlot: number) => void): Canonical {
  return mapTensors(c, suffix, (t) => {
    const v = new Float32Array(t.bytes.slice().buffer);
    f(v, t.shape[0]!, v.length / t.shape[0]!);
    return { ...t, bytes: new Uint8Array(v.buffer) };
  });
}

/** Bugs of quantized formats (spec/layouts.md §4): each changes only quantized ranks. */
function QUANT_MUTANTS(): Mutant[] {
  const swapNibbles = (t: Tensor): Tensor => (t.dtype !== 'U8' ? t : { ...t, bytes: t.bytes.map((b) => ((b & 15) << 4) | (b >> 4)) });
  return [
    onOutput('fp4-nibble-order-swapped', 'E2M1 pairs read high nibble first (element 2k taken from bits 4..7): NVFP4 and MXFP4 store element 2k in the low nibble', (out) =>
      mapTensors(mapTensors(out, 'experts.w13', swapNibbles), 'experts.w2', swapNibbles),
    ),
    mutant('nvfp4-scale-2-from-expert-0', 'every expert\'s NVFP4 weight_scale_2 taken from expert 0 (the per-expert second-level scale loaded once)', async (dir, req) => {
      const out = await load(dir, req);
      if (![...out.keys()].some((k) => k.endsWith('_scale_2'))) return out;
      const all = await load(dir, { ...req, epSize: 1, epRank: 0, epPlacement: 'linear' });
      let fixed = out;
      for (const suffix of ['experts.w13_scale_2', 'experts.w2_scale_2']) {
        fixed = mapTensors(fixed, suffix, (t, name) => {
          const first = all.get(name)!;
          const per = first.bytes.length / first.shape[0]!;
          const bytes = new Uint8Array(t.bytes.length);
          for (let slot = 0; slot < t.shape[0]!; slot++) bytes.set(first.bytes.subarray(0, per), slot * per);
          return { ...t, bytes };
        });
      }
      return fixed;
    }),
    onOutput('nvfp4-gate-scale-2-for-up', 'one weight_scale_2 for gate and up: the gate\'s used for the up rows too (vLLM keeps w13_weight_scale_2[:, 0], "w1_weight_scale_2 must match w3_weight_scale_2")', (out) =>
      mapPerProjection(out, 'experts.w13_scale_2', (v, slots) => {
        for (let s = 0; s < slots; s++) v[2 * s + 1] = v[2 * s]!;
      }),
    ),
    onOutput('nvfp4-scale-2-not-loaded', 'NVFP4 weight_scale_2 never loaded (its per-expert name unmapped): the parameter keeps the zeros of its fresh allocation, so every expert computes zero', (out) =>
      mapPerProjection(mapPerProjection(out, 'experts.w13_scale_2', (v) => v.fill(0)), 'experts.w2_scale_2', (v) => v.fill(0)),
    ),
    mutant('fused-int4-packed-unmapped', 'the fused compressed-tensors experts (experts.gate_up_proj_packed, down_proj_packed, as llm-compressor 0.12 wrote them) not mapped by a loader that knows the per-expert weight_packed names: loaded "successfully", the expert weights left at their zero allocation (llm-compressor#2939)', async (dir, req) => {
      const out = await load(dir, req);
      const d = await CheckpointDir.open(dir);
      const fused = d.tensorNames().some((n) => n.endsWith('experts.gate_up_proj_packed'));
      await d.close();
      if (!fused) return out;
      const zero = (t: Tensor): Tensor => ({ ...t, bytes: new Uint8Array(t.bytes.length) });
      return mapTensors(mapTensors(out, 'experts.w13', zero), 'experts.w2', zero);
    }),
    onOutput('input-scale-dropped', 'static activation scales (input_scale) not loaded: NVFP4 and static FP8 served without them', (out) => {
      const fixed = new Map(out);
      for (const k of out.keys()) if (k.endsWith('_input_scale')) fixed.delete(k);
      return fixed;
    }),
    mutant('k-scales-not-cut', 'w2\'s scales left whole along K (I) under TP while w2 itself is cut: right at TP 1, wrong at TP > 1', async (dir, req) => {
      const out = await load(dir, req);
      if (req.tpSize === 1 || !out.has(`layers.${layersOf(out)[0]}.experts.w2_scale`)) return out;
      const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
      const fixed = new Map(out);
      for (const k of out.keys()) if (k.endsWith('experts.w2_scale')) fixed.set(k, whole.get(k)!);
      return fixed;
    }),
    mutant('quantized-router-accepted', 'a router stored quantized (the quantizer\'s ignore list missed it) loaded anyway, dequantized, instead of refused', async (dir, req) => {
      try {
        return await load(dir, req);
      } catch (e) {
        if (!(e instanceof QuantizedRouter)) throw e;
        // What it serves does not matter: accepting the checkpoint is the bug.
        return new Map();
      }
    }),
    // Misreadings the diagnosis recognises by redoing them (harness/compare/misreadings.ts), served in the dequantized form.
    ...MISREADING_MUTANTS.map(({ name, id, bug, only }) => {
      const m = MISREADINGS.find((x) => x.id === id)!;
      return mutant(name, bug, async (dir, req) => {
        const out = await load(dir, req);
        const scheme = schemeOf(semanticsOf(await ModelConfig.read(dir)).quant);
        return scheme && m.applies(scheme) && (only?.(scheme) ?? true) ? m.serve(out, scheme, req) : out;
      });
    }),
    onOutput('int4-nibble-order-confused', 'INT4 words read in the other tool\'s nibble order: AutoAWQ\'s (nibble k holds element 0, 2, 4, 6, 1, 3, 5, 7) for compressed-tensors/GPTQ words packed in order, or the reverse', (out) =>
      mapTensors(out, '', (t, name) => {
        if (t.dtype !== 'I32' || !/experts\.w(13|2)$/.test(name)) return t;
        const words = new Uint32Array(t.bytes.slice().buffer);
        const order = [0, 2, 4, 6, 1, 3, 5, 7];
        for (let i = 0; i < words.length; i++) {
          let v = 0;
          for (let k = 0; k < 8; k++) v |= ((words[i]! >>> (4 * order[k]!)) & 15) << (4 * k);
          words[i] = v >>> 0;
        }
        return { ...t, bytes: new Uint8Array(words.buffer) };
      }),
    ),
    onOutput('fp8-w13-requantized-to-max-scale', 'per-tensor FP8 gate and up requantized to the larger of their two scales (vLLM\'s "Fp8 moe kernel needs single weight scale for w13 per expert"): lossy where they differ', requantizedToMaxScale),
  ];
}

/** The float dtypes' NaN, for a mutant that leaves memory uninitialised. */
const nanOf = (t: Tensor): Uint8Array => encodeFloats(t.dtype, [NaN]);

class UnsupportedRequest extends MoeConformanceError {}

/** More wrong loaders: one for each diagnosis kind the ones above do not produce. */
const MORE_LOADER_MUTANTS: readonly Mutant[] = [
  mutant('tp-rank-off-by-one', 'TP rank r loads the slice of rank r+1 (mod T): the rank index shifted by one', async (dir, req) => {
    const own = await load(dir, req);
    if (req.tpSize === 1) return own;
    const other = await load(dir, { ...req, tpRank: (req.tpRank + 1) % req.tpSize });
    const out = new Map(own);
    for (const [k, t] of other) if (/\.(experts\.w13|experts\.w13_bias|experts\.w2|shared\.w13|shared\.w2)$/.test(k)) out.set(k, t);
    return out;
  }),
  mutant('shared-expert-not-cut', 'the shared expert loaded whole on every TP rank (it is cut like the routed experts)', async (dir, req) => {
    const out = new Map(await load(dir, req));
    if (req.tpSize === 1) return out;
    const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
    for (const k of whole.keys()) if (/\.shared\.w(13|2)$/.test(k)) out.set(k, whole.get(k)!);
    return out;
  }),
  onOutput('rounded-through-bf16', 'F32 weights converted to the engine\'s BF16 compute dtype and back on load', (out) => {
    const fixed = new Map(out);
    for (const [k, t] of out) if (t.dtype === 'F32') fixed.set(k, { ...t, bytes: encodeFloats('F32', decodeFloats64('BF16', encodeFloats('BF16', decodeFloats64('F32', t.bytes)))) });
    return fixed;
  }),
  onOutput('missing-expert-as-nan', 'the last expert of each layer left uninitialised (torch.empty: NaN) because its keys were not found', (out, _req, m) =>
    fillLastExpert(out, m, (t) => ['F32', 'F16', 'BF16'].includes(t.dtype), (bytes, from, to, t) => {
      const nan = nanOf(t);
      for (let i = from; i < to; i += nan.length) bytes.set(nan, i);
    }),
  ),
  onOutput('raw-tensor-kept', 'the checkpoint\'s fused gate_up_proj also written under its own name next to the canonical w13', (out) => {
    const fixed = new Map(out);
    for (const L of layersOf(out)) fixed.set(`layers.${L}.experts.gate_up_proj`, out.get(`layers.${L}.experts.w13`)!);
    return fixed;
  }),
  mutant('broken-checkpoint-accepted', 'errors reading the checkpoint swallowed: a broken checkpoint loads as whatever was read (nothing)', async (dir, req) => {
    try {
      return await load(dir, req);
    } catch {
      return new Map();
    }
  }),
  mutant('invalid-request-served', 'request checks skipped: a TP size that does not divide I, or a rank out of range, served as TP 1 / rank 0', async (dir, req) => {
    try {
      return await load(dir, req);
    } catch (e) {
      if (!(e instanceof InvalidParallelRequest)) throw e;
      return load(dir, { ...req, tpSize: 1, tpRank: 0, epRank: Math.min(req.epRank, req.epSize - 1) });
    }
  }),
  mutant('ep-refused', 'expert parallelism not implemented: every EP size above 1 refused', async (dir, req) => {
    if (req.epSize > 1) throw new UnsupportedRequest('expert parallelism is not supported', { expected: 'ep size 1', found: req.epSize });
    return load(dir, req);
  }),
  mutant('fp8-scale-rows-from-rank-start', 'FP8 w13 scales of TP rank r taken from block row r*ceil(Ir/bm), as if every rank started on a block boundary (it starts at floor(r*Ir/bm))', async (dir, req) => {
    const out = await load(dir, req);
    const m = await modelOf(dir);
    if (req.tpSize === 1 || m.blockRows === undefined) return out;
    const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
    const Ir = m.intermediate / req.tpSize;
    const start = req.tpRank * Math.ceil(Ir / m.blockRows);
    return mapTensors(out, 'experts.w13_scale', (t, name) => {
      const w = whole.get(name)!;
      const wholeHalf = w.shape[1]! / 2;
      const half = t.shape[1]! / 2;
      const rows = (i: number) => Math.min(start + i, wholeHalf - 1);
      return selectRows(w, Array.from({ length: 2 * half }, (_, i) => (i < half ? rows(i) : wholeHalf + rows(i - half))).map((r) => [r, r + 1] as const), true);
    });
  }),
  mutant(
    'safetensors-globbed',
    'every *.safetensors file of the folder read in name order, a later file\'s tensor replacing an earlier one\'s, not only the files the index names (vLLM issue #40765: runai_streamer loads both Ministral consolidated and HF sharded safetensors; mlx-vlm issue #1329)',
    async (dir, req) => {
      const c = await CheckpointDir.open(dir);
      const ignored = c.ignored;
      await c.close();
      return ignored.length === 0 ? load(dir, req) : globbed(dir, req);
    },
  ),
];

/** What a loader that globs *.safetensors loads: every file's tensors merged in name order (the last file wins), cut by the reference. */
async function globbed(dir: string, req: ParallelRequest): Promise<Canonical> {
  const view = await mkdtemp(join(tmpdir(), 'moe-globbed-'));
  try {
    const merged = new Map<string, Tensor>();
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort()) {
      const f = await SafetensorsFile.open(join(dir, name));
      try {
        for (const t of f.tensors.keys()) merged.set(t, await f.readTensor(t));
      } finally {
        await f.close();
      }
    }
    await copyFile(join(dir, 'config.json'), join(view, 'config.json'));
    await writeSafetensors(join(view, 'model.safetensors'), merged);
    return await referenceLoader.load(view, req);
  } finally {
    await rm(view, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Kernel-side mutants: the weights load right, the forward routes wrong. Each routing is
// written here on its own (not by editing the semantics), so the diagnosis, which models
// the mistakes its own way (properties/diagnose-forward.ts), is checked independently.

type RouteFn = typeof route;

function forwardMutant(name: string, bug: string, mutateRoute: RouteFn): Mutant {
  const forward: MoeBackend = { name, forward: async (sem, layer, ranks, x, tokens) => referenceForward(sem, layer, ranks, x, tokens, { route: mutateRoute }) };
  return { name, bug, loader: reference, forward, diagnosis: 'unknown' };
}

/** The top-k weights recomputed from the raw scores of the selected experts (no renormalisation), × scaling. */
const unrenormalised: RouteFn = (sem, logits, tokens, bias) => {
  const r = route(sem, logits, tokens, bias);
  const ro = sem.routing;
  // product_key renormalises weights that softmax already normalised: nothing to undo.
  if (!('renormalize' in ro) || !ro.renormalize || ro.kind === 'product_key') return r;
  const E = sem.experts;
  const k = sem.topK;
  const weights = new Float64Array(r.weights.length);
  for (let t = 0; t < tokens; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    const p = ro.kind === 'softmax_topk' ? softmax(row) : Array.from(row, sigmoid);
    for (let j = 0; j < k; j++) weights[t * k + j] = p[r.selected[t * k + j]!]! * (ro.scaling ?? 1);
  }
  return { ...r, weights };
};

const scaledTwice: RouteFn = (sem, logits, tokens, bias) => {
  const r = route(sem, logits, tokens, bias);
  const ro = sem.routing;
  return 'scaling' in ro ? { ...r, weights: r.weights.map((w) => w * (ro.scaling ?? 1)) } : r;
};

/** sigmoid_bias, and sigmoid_group_limited_bias without groups, with p = softmax(l) in place of σ(l). */
const softmaxScores: RouteFn = (sem, logits, tokens, bias) => {
  const ro = sem.routing;
  if (!(ro.kind === 'sigmoid_bias' || (ro.kind === 'sigmoid_group_limited_bias' && ro.groups <= 1))) return route(sem, logits, tokens, bias);
  const E = sem.experts;
  const k = sem.topK;
  const out: RoutingResult = { selected: new Int32Array(tokens * k), weights: new Float64Array(tokens * k), scores: new Float64Array(tokens * E), inputScale: false };
  for (let t = 0; t < tokens; t++) {
    const p = softmax(logits.subarray(t * E, (t + 1) * E));
    const c = p.map((v, e) => v + (bias?.[e] ?? 0));
    const ids = topK(c, k);
    let w = ids.map((e) => p[e]!);
    if (ro.renormalize) {
      const d = w.reduce((a, b) => a + b, 0) + (ro.kind === 'sigmoid_bias' ? 1e-6 : 1e-20);
      w = w.map((v) => v / d);
    }
    out.selected.set(ids, t * k);
    out.weights.set(w.map((v) => v * ro.scaling), t * k);
    out.scores.set(c, t * E);
  }
  return out;
};

const FORWARD_MUTANTS: readonly Mutant[] = [
  forwardMutant('forward-ignores-correction-bias', 'a forward that selects experts without the correction bias (e_score_correction_bias / expert_bias)', (sem, logits, tokens) => route(sem, logits, tokens, undefined)),
  forwardMutant('forward-skips-renormalisation', 'a forward that skips the renormalisation of the top-k weights (norm_topk_prob)', unrenormalised),
  forwardMutant('forward-routed-scaling-twice', 'a forward that multiplies by routed_scaling_factor twice (once in the router, once after the experts)', scaledTwice),
  forwardMutant('forward-softmax-for-sigmoid', 'a forward that scores experts with softmax where the router uses sigmoid (DeepSeek-V3, GLM-4.5, dots1, LFM2)', softmaxScores),
];

/** The diagnosis kind every mutant's failures must carry. */
const DIAGNOSIS: Record<string, DiagnosisKind> = {
  'swapped-gate-up': 'gate-up-swapped',
  'fused-axis-cut-in-one-piece': 'fused-axis-cut-in-one-piece',
  'transposed-read-when-h-eq-2i': 'transposed',
  'interleaved-read-as-concatenated': 'interleave-concat-confusion',
  'ep-remainder-dropped': 'expert-placement',
  'ep-ranks-reversed': 'expert-placement',
  'expert-order-by-string': 'expert-permutation',
  'dropped-expert-as-zeros': 'zeros-or-constant',
  'w2-bias-divided-per-rank': 'scaled',
  'w13-bias-cut-in-one-piece': 'fused-axis-cut-in-one-piece',
  'correction-bias-ignored': 'missing-tensor',
  'router-cut-by-ep': 'shape-mismatch',
  'shared-expert-fused-cut': 'fused-axis-cut-in-one-piece',
  'tp-rank-off-by-one': 'tp-slice-of-another-rank',
  'shared-expert-not-cut': 'not-cut',
  'rounded-through-bf16': 'dtype-conversion',
  'missing-expert-as-nan': 'nan-or-inf',
  'raw-tensor-kept': 'unexpected-tensor',
  'broken-checkpoint-accepted': 'accepted-broken-checkpoint',
  'ep-refused': 'refused-valid-request',
  'invalid-request-served': 'accepted-invalid-request',
  'fp8-scale-rows-from-rank-start': 'scale-block-misaligned',
  'forward-ignores-correction-bias': 'forward-ignores-correction-bias',
  'forward-skips-renormalisation': 'forward-skips-renormalisation',
  'forward-routed-scaling-twice': 'forward-routed-scaling-twice',
  'forward-softmax-for-sigmoid': 'forward-softmax-for-sigmoid',
  // Mutants of model types and quantized formats added with issues 14 and 15.
  // (The quantized ones' packed-value kinds, nibble-order, dequantized-differently and requantized, are read by harness/compare/diagnose.ts.)
  'correction-bias-narrowed': 'dtype-conversion',
  'non-gated-as-gated': 'shape-mismatch',
  'zero-experts-dropped': 'shape-mismatch',
  // Quantized formats (spec/layouts.md §4).
  'fp4-nibble-order-swapped': 'nibble-order',
  'int4-nibble-order-confused': 'nibble-order',
  'nvfp4-scale-2-from-expert-0': 'expert-placement',
  'nvfp4-gate-scale-2-for-up': 'gate-up-scales-merged',
  'nvfp4-scale-2-not-loaded': 'zeros-or-constant',
  'fused-int4-packed-unmapped': 'zeros-or-constant',
  'input-scale-dropped': 'missing-tensor',
  'k-scales-not-cut': 'not-cut',
  'quantized-router-accepted': 'accepted-broken-checkpoint',
  'int4-zero-point-ignored': 'dequantized-differently',
  'gptq-zeros-without-plus-one': 'zero-point-off-by-one',
  'int4-g-idx-ignored': 'group-index-misapplied',
  'fp8-w13-requantized-to-max-scale': 'requantized',
  'int4-group-size-assumed-128': 'group-size-mismatch',
  'nvfp4-scale-2-applied-twice': 'global-scale-applied-twice',
  'safetensors-globbed': 'unindexed-file-read',
};

/** Mutants the default suite cannot reach in its few cases per property. */
const SUITE: Record<string, NonNullable<Mutant['suite']>> = {
  'fp8-scale-rows-from-rank-start': {
    capabilities: { modelTypes: ['mixtral'] },
    cases: 15,
    why: 'the bug shows only where a TP rank starts inside an FP8 scale block (quantized cases with TP > 1 and I/T not a multiple of the block), which the default 5 quantized cases need not draw',
  },
  // Both were caught by the default draw until the model types grew to 47; which 5 cases a family
  // draws moves with every type added, and these bugs show in one dtype of their family only.
  'int4-zero-point-ignored': {
    capabilities: { modelTypes: ['mixtral'] },
    cases: 15,
    why: 'only the asymmetric dtype of the INT4 compressed-tensors family (one of four) has zero points, which the default 5 quantized cases need not draw',
  },
  'nvfp4-gate-scale-2-for-up': {
    capabilities: { modelTypes: ['mixtral'] },
    cases: 15,
    why: 'only NVFP4 with a global scale per projection (one of the family\'s three variants) has gate and up scales that can differ, which the default 5 quantized cases need not draw',
  },
};

export const MUTANTS: readonly Mutant[] = [...LOADER_MUTANTS, ...MORE_LOADER_MUTANTS, ...FORWARD_MUTANTS].map((m) => ({
  ...m,
  diagnosis: DIAGNOSIS[m.name] ?? 'unknown',
  ...(SUITE[m.name] && { suite: SUITE[m.name] }),
}));
