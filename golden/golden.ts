// The golden fixtures made by transformers (golden/hf/<type>-<dtype>/), and their
// comparison with every kernel backend: for each fixture, layout and TP/EP split, the
// ranks are loaded, each backend's forward of every MoE layer is compared with the
// recorded `moe.L.output` (and `moe.L.router_logits` where recorded) under the float32
// bounds of harness/compare/tolerance.ts.
import { tpKeepsBlocks } from '../harness/canonical/cut.js';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import type { Loader } from '../harness/tensor.js';
import type { ForwardInputs, MoeBackend, RankTensors } from '../kernels/backend.js';
import { MoeConformanceError } from '../harness/errors.js';
import { ModelConfig } from '../harness/checkpoint/config.js';
import { moeLayoutsOf, semanticsOf } from '../harness/quant/layout.js';
import { DTYPE_NAMES, QUANT_DTYPE_NAMES, type DtypeName } from '../harness/conformance/capabilities.js';
import { QUANT_DTYPES, type QuantDtypeName, type QuantScheme } from '../harness/quant/formats/index.js';
import { referenceLoader } from '../harness/loader/load.js';
import { SafetensorsFile } from '../harness/safetensors/read.js';
import { readBoundedFileAs } from '../harness/safetensors/bounded-read.js';
import { parseStrictJson, toPlain } from '../harness/safetensors/json.js';

/** The largest golden.json read (a few hundred bytes in practice). */
const GOLDEN_JSON_MAX_BYTES = 1 << 20;
import { decodeFloats } from '../harness/safetensors/codecs.js';
import { compareToBounds, findRoutingTies, worstTier, type MismatchReport, type Tier } from '../harness/compare/tolerance.js';
import { referenceBackend, referenceForward, type ReferenceResult } from '../kernels/moe.js';
import { loadRanks, splitLabel, type Split } from '../kernels/ranks.js';

export class GoldenFixtureError extends MoeConformanceError {}

export const LAYOUTS = ['original', 'fused'] as const;
export type GoldenLayout = (typeof LAYOUTS)[number];

/** golden/hf of this package, from the sources (golden/) or the build (dist/golden/). */
export function defaultGoldenRoot(folder: 'hf' | 'hf-quant' = 'hf'): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, folder), join(here, '../../golden', folder)];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}

/** Every fixture folder this package ships: the float models, then the quantized ones. */
export function defaultGoldenRoots(): string[] {
  return [defaultGoldenRoot('hf'), defaultGoldenRoot('hf-quant')];
}

export interface Fixture {
  /** Folder name, e.g. `mixtral-bf16`. */
  name: string;
  dir: string;
  modelType: string;
  /** The dtype a loader declares to be given this fixture (fixtureDtype). */
  dtype: DtypeName;
  layouts: Array<{ layout: GoldenLayout; dir: string }>;
}

const ALL_DTYPE_NAMES: readonly string[] = [...DTYPE_NAMES, ...QUANT_DTYPE_NAMES];

/**
 * The dtype a fixture is declared under: a fixture is named `<model type>-<dtype>`
 * (golden/hf/README.md), and where the rest of its name is no dtype name
 * (`qwen3_moe-gptq-desc-act`), the quantized dtype name of the same format whose scheme is
 * the fixture's (as its config reads), else the closest (most fields equal: group, symmetry,
 * activation order, ...).
 */
export function fixtureDtype(name: string, modelType: string, scheme: QuantScheme | undefined): DtypeName {
  const rest = name.slice(modelType.length + 1);
  if (ALL_DTYPE_NAMES.includes(rest)) return rest as DtypeName;
  if (!scheme) throw new GoldenFixtureError('a float fixture must be named <model type>-<f32|f16|bf16>', { file: name, expected: DTYPE_NAMES.join('|'), found: rest });
  const fields = Object.entries(scheme).map(([k, v]) => [k, JSON.stringify(v)] as const);
  const score = (n: QuantDtypeName) => {
    const other = QUANT_DTYPES[n] as unknown as Record<string, unknown>;
    return fields.filter(([k, v]) => JSON.stringify(other[k]) === v).length;
  };
  const same = QUANT_DTYPE_NAMES.filter((n) => QUANT_DTYPES[n].method === scheme.method);
  if (same.length === 0) throw new GoldenFixtureError('no quantized dtype name of the fixture\'s format', { file: name, expected: QUANT_DTYPE_NAMES.join('|'), found: scheme.method });
  return same.reduce((best, n) => (score(n) > score(best) ? n : best));
}

const isFixtureDir = (dir: string) => existsSync(join(dir, 'golden.safetensors')) && existsSync(join(dir, 'golden.json'));

/**
 * Fixture folders under `root`, by name; `root` may itself be one fixture folder. A folder
 * with golden.safetensors but no layout folder is refused, not skipped.
 */
export async function discoverFixtures(root: string = defaultGoldenRoot()): Promise<Fixture[]> {
  let dirs: string[];
  if (isFixtureDir(root)) dirs = [root];
  else {
    let entries;
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch (e) {
      throw new GoldenFixtureError(`cannot read the fixture folder: ${(e as Error).message}`, { file: root });
    }
    dirs = entries.filter((d) => d.isDirectory()).map((d) => join(root, d.name)).filter(isFixtureDir).sort();
    if (dirs.length === 0) throw new GoldenFixtureError('no golden fixture here', { file: root, expected: '<type>-<dtype>/golden.safetensors', found: 'none' });
  }
  const fixtures: Fixture[] = [];
  for (const dir of dirs) {
    const file = join(dir, 'golden.json');
    // Bounded and strict, like every JSON file the harness reads (spec §5): a fixture folder may come from anyone.
    const bytes = await readBoundedFileAs(file, GOLDEN_JSON_MAX_BYTES, GoldenFixtureError, 'cannot read golden.json');
    let meta: unknown;
    try {
      meta = toPlain(parseStrictJson(bytes, { file }));
    } catch (e) {
      if (!(e instanceof MoeConformanceError)) throw e;
      throw new GoldenFixtureError(`golden.json is not valid JSON: ${e.reason}`, { file, ...(e.expected !== undefined && { expected: e.expected }), ...(e.found !== undefined && { found: e.found }) });
    }
    const modelType = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? (meta as { model_type?: unknown }).model_type : undefined;
    const name = dir.split(/[\\/]/).pop()!;
    if (typeof modelType !== 'string' || modelType === '') throw new GoldenFixtureError('golden.json names no model_type', { file, expected: 'an object with a model_type string', found: JSON.stringify(modelType ?? meta) });
    // The folder is named <model type>-<dtype> (golden/hf/README.md): the dtype a loader declares for it is read from the name.
    if (!name.startsWith(`${modelType}-`)) throw new GoldenFixtureError('the fixture folder is not named after its model_type', { file, expected: `${modelType}-<dtype>`, found: name });
    const layouts = LAYOUTS.filter((l) => existsSync(join(dir, l, 'config.json'))).map((layout) => ({ layout, dir: join(dir, layout) }));
    if (layouts.length === 0) throw new GoldenFixtureError('fixture has neither original/ nor fused/', { file: dir });
    const dtype = fixtureDtype(name, modelType, moeLayoutsOf(await ModelConfig.read(layouts[0]!.dir)).scheme);
    fixtures.push({ name, dir, modelType, dtype, layouts });
  }
  return fixtures;
}

/** Fixtures under each root (a fixture folder or a folder of them); this package's own when none is given. */
export async function fixturesIn(roots: readonly string[]): Promise<Fixture[]> {
  const lists = await Promise.all((roots.length ? roots : defaultGoldenRoots()).map((r) => discoverFixtures(r)));
  return lists.flat();
}

export interface GoldenLayer {
  layer: number;
  tokens: number;
  input: Float32Array;
  output: Float32Array;
  routerLogits?: Float32Array;
  /** `[tokens]` the token ids the block was given (deepseek_v4: hash layers route by them). */
  tokenIds?: number[];
  /** `[tokens, R]` the router state carried from the previous layer (zaya's MLP router). */
  routerState?: Float32Array;
}

/** The recorded input, output and router logits of each MoE layer of `sem`. */
export async function readGolden(fixture: Fixture, sem: MoeSemantics): Promise<GoldenLayer[]> {
  const file = join(fixture.dir, 'golden.safetensors');
  const st = await SafetensorsFile.open(file);
  try {
    const read = async (name: string, cols: number): Promise<Float32Array> => {
      const info = st.tensors.get(name);
      if (!info || info.dtype !== 'F32' || info.shape.length !== 2 || info.shape[1] !== cols) {
        throw new GoldenFixtureError('golden tensor missing or not F32 [tokens, cols]', { file, tensor: name, expected: `F32 [T, ${cols}]`, found: info ? `${info.dtype} [${info.shape.join(', ')}]` : 'absent' });
      }
      return decodeFloats('F32', (await st.readTensor(name)).bytes);
    };
    const layers: GoldenLayer[] = [];
    for (const layer of sem.moeLayers) {
      const input = await read(`moe.${layer}.input`, sem.hidden);
      const g: GoldenLayer = { layer, tokens: input.length / sem.hidden, input, output: await read(`moe.${layer}.output`, sem.hidden) };
      if (g.output.length !== input.length) throw new GoldenFixtureError('golden output and input differ in tokens', { file, layer, expected: input.length, found: g.output.length });
      if (st.tensors.has(`moe.${layer}.router_logits`)) g.routerLogits = await read(`moe.${layer}.router_logits`, sem.experts);
      if (sem.mlpRouter?.stateLayers.includes(layer)) g.routerState = await read(`moe.${layer}.router_state`, sem.mlpRouter.hidden);
      if (st.tensors.has(`moe.${layer}.token_ids`)) g.tokenIds = await readTokenIds(st, file, `moe.${layer}.token_ids`, g.tokens);
      layers.push(g);
    }
    return layers;
  } finally {
    await st.close();
  }
}

/** A fixture's `[tokens]` token ids, I64 (as torch records them) or I32. */
async function readTokenIds(st: SafetensorsFile, file: string, name: string, tokens: number): Promise<number[]> {
  const info = st.tensors.get(name)!;
  if ((info.dtype !== 'I64' && info.dtype !== 'I32') || info.shape.length !== 1 || info.shape[0] !== tokens) {
    throw new GoldenFixtureError('golden token ids not I64/I32 [tokens]', { file, tensor: name, expected: `I64 [${tokens}]`, found: `${info.dtype} [${info.shape.join(', ')}]` });
  }
  const bytes = (await st.readTensor(name)).bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: tokens }, (_, i) => (info.dtype === 'I64' ? Number(view.getBigInt64(8 * i, true)) : view.getInt32(4 * i, true)));
}

/** The forward inputs of a golden layer beside its hidden states. */
export const goldenInputs = (g: GoldenLayer): ForwardInputs => ({ ...(g.tokenIds && { tokenIds: g.tokenIds }), ...(g.routerState && { routerState: g.routerState }) });

/** TP 1, TP 2, EP 2 linear, TP 2 × EP 3 round-robin (E mod 3 ≠ 0 for every fixture), TP 4 × EP 2. */
export const DEFAULT_SPLITS: readonly Split[] = [
  { tp: 1, ep: 1, placement: 'linear' },
  { tp: 2, ep: 1, placement: 'linear' },
  { tp: 1, ep: 2, placement: 'linear' },
  { tp: 2, ep: 3, placement: 'round_robin' },
  { tp: 4, ep: 2, placement: 'linear' },
];

/** A split the protocol allows for this model: TP divides I and Is (MXFP4: in whole blocks), EP at most E. */
export function splitAllowed(sem: MoeSemantics, s: Split): boolean {
  const blocks = tpKeepsBlocks(sem.intermediate, s.tp, sem.quant);
  return sem.intermediate % s.tp === 0 && sem.sharedIntermediate % s.tp === 0 && s.ep <= sem.experts && blocks;
}

export interface LayerComparison {
  layer: number;
  output: MismatchReport;
  routerLogits?: MismatchReport;
}

export interface GoldenRow {
  fixture: string;
  layout: GoldenLayout;
  split: string;
  backend: string;
  maxAbs: number;
  maxRel: number;
  tier: Tier;
  layers: LayerComparison[];
  /** Set when the case could not run (a refused load, a backend error): the row fails. */
  error?: string;
}

/** Which ranks hold each expert, for the per-rank breakdown of a mismatch. */
function ranksOfExpert(ranks: RankTensors[], layer: number): Map<number, string[]> {
  const map = new Map<number, string[]>();
  for (const { req, tensors } of ranks) {
    const ids = tensors.get(`layers.${layer}.experts.ids`);
    if (!ids) continue;
    const view = new DataView(ids.bytes.buffer, ids.bytes.byteOffset, ids.bytes.byteLength);
    for (let i = 0; i + 4 <= ids.bytes.length; i += 4) {
      const e = view.getInt32(i, true);
      map.set(e, [...(map.get(e) ?? []), `tp${req.tpRank}/ep${req.epRank}`]);
    }
  }
  return map;
}

/**
 * Compares one backend's forward of one layer with the golden record. The golden output
 * and a float32 backend are each within the strict bound of the exact value, so their
 * difference is allowed twice the bound. Tokens routed within rounding are ties.
 */
export async function compareLayer(sem: MoeSemantics, ranks: RankTensors[], golden: GoldenLayer, backend: MoeBackend, reference: ReferenceResult): Promise<LayerComparison> {
  const bounds = reference.bounds!;
  const twice = (b: Float64Array) => b.map((v) => 2 * v);
  const ties = findRoutingTies(reference.routing.scores, bounds.logits, golden.tokens, sem.experts, sem.topK, reference.routing.groups);
  // The reference's forward was already computed (with the bounds): no need to run it twice.
  const result = backend === referenceBackend ? reference : await backend.forward(sem, golden.layer, ranks, golden.input, golden.tokens, goldenInputs(golden));
  const output = compareToBounds(result.output, golden.output, { strict: twice(bounds.strict), loose: twice(bounds.loose) }, sem.hidden, {
    selected: reference.selected, k: sem.topK, ranksOfExpert: ranksOfExpert(ranks, golden.layer), ties,
  });
  const comparison: LayerComparison = { layer: golden.layer, output };
  if (golden.routerLogits && result.routerLogits) {
    comparison.routerLogits = compareToBounds(result.routerLogits, golden.routerLogits, { strict: twice(bounds.logits), loose: twice(bounds.logitsLoose) }, sem.experts);
  }
  return comparison;
}

export interface GoldenOptions {
  fixtures: Fixture[];
  backends: MoeBackend[];
  loader?: Loader;
  splits?: readonly Split[];
  layouts?: readonly GoldenLayout[];
  /** Called after each row, for progress output. */
  onRow?: (row: GoldenRow) => void;
}

/** Every fixture × layout × allowed split × backend, one row each (layers folded in). */
export async function runGolden(options: GoldenOptions): Promise<GoldenRow[]> {
  const loader = options.loader ?? referenceLoader;
  const rows: GoldenRow[] = [];
  for (const fixture of options.fixtures) {
    for (const { layout, dir } of fixture.layouts.filter((l) => !options.layouts || options.layouts.includes(l.layout))) {
      const sem = semanticsOf(await ModelConfig.read(dir));
      const golden = await readGolden(fixture, sem);
      for (const split of (options.splits ?? DEFAULT_SPLITS).filter((s) => splitAllowed(sem, s))) {
        const base = { fixture: fixture.name, layout, split: splitLabel(split) };
        let ranks: RankTensors[];
        let references: ReferenceResult[];
        try {
          ranks = await loadRanks(loader, dir, split);
          references = golden.map((g) => referenceForward(sem, g.layer, ranks, g.input, g.tokens, { bound: true, inputs: goldenInputs(g) }));
        } catch (e) {
          for (const backend of options.backends) rows.push(failedRow(base, backend.name, e, options.onRow));
          continue;
        }
        for (const backend of options.backends) {
          try {
            const layers: LayerComparison[] = [];
            for (const [i, g] of golden.entries()) layers.push(await compareLayer(sem, ranks, g, backend, references[i]!));
            const reports = layers.flatMap((l) => (l.routerLogits ? [l.output, l.routerLogits] : [l.output]));
            const row: GoldenRow = {
              ...base, backend: backend.name, layers,
              maxAbs: Math.max(...layers.map((l) => l.output.maxAbs.value)),
              maxRel: Math.max(...layers.map((l) => l.output.maxRel.value)),
              tier: worstTier(...reports.map((r) => r.tier)),
            };
            rows.push(row);
            options.onRow?.(row);
          } catch (e) {
            rows.push(failedRow(base, backend.name, e, options.onRow));
          }
        }
      }
    }
  }
  return rows;
}

function failedRow(base: { fixture: string; layout: GoldenLayout; split: string }, backend: string, e: unknown, onRow?: (row: GoldenRow) => void): GoldenRow {
  if (!(e instanceof MoeConformanceError)) throw e;
  const row: GoldenRow = { ...base, backend, maxAbs: NaN, maxRel: NaN, tier: 'fail', layers: [], error: `${e.name}: ${e.message}` };
  onRow?.(row);
  return row;
}
