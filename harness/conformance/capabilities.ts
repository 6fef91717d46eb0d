// What a loader says it supports (spec/loader-protocol.md §7.3): model types, layouts,
// dtypes, quantization forms, the largest TP and EP, placements and engine forms. One type
// and one parser serve the worker handshake, `check --capabilities FILE` and
// `defineMoeConformanceSuite({capabilities})`. A case outside them is skipped as
// "not declared", with the reason, never counted as a pass.
import { MoeConformanceError } from '../errors.js';
import type { EpPlacement } from '../tensor.js';
import { MODEL_TYPES, type ModelType } from '../layouts/registry.js';
import { QUANT_DTYPE_NAMES as QUANT_NAMES, type QuantDtypeName } from '../quant/formats/index.js';
import { FormDeclarationError, parseForms } from '../canonical/forms.js';
import { JsonSyntaxError, parseStrictJson, toPlain } from '../safetensors/json.js';
import { readBoundedFileAs } from '../safetensors/bounded-read.js';

export class CapabilitiesError extends MoeConformanceError {}

export type Layout = 'original' | 'fused';
/** Quantized checkpoints (spec §4): routed experts in one of harness/quant's formats, BF16 elsewhere. */
export type { QuantDtypeName };
export type DtypeName = 'f32' | 'f16' | 'bf16' | QuantDtypeName;
export const LAYOUTS: readonly Layout[] = ['original', 'fused'];
/** The float dtypes, drawn by default; the quantized ones have their own case family. */
export const DTYPE_NAMES: readonly DtypeName[] = ['f32', 'f16', 'bf16'];
export const QUANT_DTYPE_NAMES: readonly QuantDtypeName[] = QUANT_NAMES;
export const PLACEMENTS: readonly EpPlacement[] = ['linear', 'round_robin'];
/** The output forms of a quantized checkpoint (spec §4): quantized bytes plus scales, or dequantized F32. */
export type QuantForm = 'quantized' | 'dequantized';
export const QUANT_FORMS: readonly QuantForm[] = ['quantized', 'dequantized'];

/** Every field is optional: an absent field declares no limit on that axis. */
export interface Capabilities {
  modelTypes?: readonly ModelType[];
  layouts?: readonly Layout[];
  /** Checkpoint dtypes loaded: f32, f16, bf16, and the quantized fp8, mxfp4. */
  dtypes?: readonly DtypeName[];
  /** The forms written for a quantized checkpoint. */
  quantization?: readonly QuantForm[];
  maxTp?: number;
  maxEp?: number;
  placements?: readonly EpPlacement[];
  /** Engine forms the loader emits instead of the canonical one (spec §8, harness/canonical/forms.ts); its ranks are mapped back before comparing. */
  forms?: readonly string[];
}

const FIELDS = ['modelTypes', 'layouts', 'dtypes', 'quantization', 'maxTp', 'maxEp', 'placements', 'forms'] as const;

/**
 * Checks an untrusted value (parsed JSON, or a TypeScript object) and returns it as
 * Capabilities. Unknown fields and unknown values are refused, so a typo does not silently
 * declare less (or more) than meant. `where` names the source in the error.
 */
export function parseCapabilities(value: unknown, where: string): Capabilities {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CapabilitiesError('capabilities must be a JSON object', { file: where, expected: `{${FIELDS.join(', ')}}`, found: showJson(value) });
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k)) throw new CapabilitiesError(`unknown capabilities field ${JSON.stringify(k)}`, { file: where, expected: FIELDS.join(' | '), found: k });
  }
  const list = <T extends string>(k: string, allowed?: readonly T[]): T[] | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) {
      throw new CapabilitiesError(`capabilities.${k} must be a list of strings`, { file: where, expected: allowed ? `a list of ${allowed.join(', ')}` : 'a list of names', found: showJson(v) });
    }
    if (allowed) {
      const bad = v.find((x) => !(allowed as readonly string[]).includes(x));
      if (bad !== undefined) throw new CapabilitiesError(`capabilities.${k}: unknown value`, { file: where, expected: allowed.join(' | '), found: bad });
    }
    // Each value once, so a list is no longer than the values there are: every skip note quotes
    // it, and a 1 MB file of one model type repeated made 1,713 notes of 0.9 MB each (1.5 GB).
    const seen = new Set<string>();
    for (const x of v as string[]) {
      if (seen.has(x)) throw new CapabilitiesError(`capabilities.${k}: a value given twice`, { file: where, expected: 'each value once', found: x });
      seen.add(x);
    }
    return v as T[];
  };
  const size = (k: string): number | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new CapabilitiesError(`capabilities.${k} must be an integer ≥ 1`, { file: where, expected: 'an integer ≥ 1', found: showJson(v) });
    return v;
  };
  const c: Capabilities = {};
  const modelTypes = list('modelTypes', MODEL_TYPES);
  const layouts = list('layouts', LAYOUTS);
  const dtypes = list('dtypes', [...DTYPE_NAMES, ...QUANT_DTYPE_NAMES]);
  const quantization = list('quantization', QUANT_FORMS);
  const maxTp = size('maxTp');
  const maxEp = size('maxEp');
  const placements = list('placements', PLACEMENTS);
  const forms = list('forms');
  if (forms) {
    try {
      parseForms(forms);
    } catch (e) {
      if (e instanceof FormDeclarationError) throw new CapabilitiesError(`capabilities.forms: ${e.message}`, { file: where });
      throw e;
    }
  }
  return Object.assign(c, {
    ...(modelTypes && { modelTypes }), ...(layouts && { layouts }), ...(dtypes && { dtypes }), ...(quantization && { quantization }),
    ...(maxTp !== undefined && { maxTp }), ...(maxEp !== undefined && { maxEp }), ...(placements && { placements }), ...(forms && { forms }),
  });
}

/** The largest capabilities file read (a few hundred bytes in practice). */
const CAPABILITIES_MAX_BYTES = 1 << 20;

/** Reads and parses a capabilities file (`check --capabilities FILE`): a regular file of at most CAPABILITIES_MAX_BYTES. */
export async function readCapabilitiesFile(file: string): Promise<Capabilities> {
  return parseCapabilitiesJson(await readBoundedFileAs(file, CAPABILITIES_MAX_BYTES, CapabilitiesError, 'cannot read capabilities'), file);
}

/** Parses the text of a capabilities file (`check --capabilities FILE`). */
export function parseCapabilitiesJson(text: string | Uint8Array, where: string): Capabilities {
  let value: unknown;
  try {
    value = toPlain(parseStrictJson(text));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new CapabilitiesError(`capabilities are not JSON: ${e.message}`, { file: where });
  }
  return parseCapabilities(value, where);
}

/** What a case asks of a loader; absent fields ask nothing on that axis. */
export interface CaseNeeds {
  modelType: string;
  /** The layouts whose checkpoints the loader reads (both for a layout-invariance case). */
  layouts: readonly Layout[];
  dtype: DtypeName;
  tp?: number;
  ep?: number;
  /** Only where EP > 1 (with one EP rank the placement does not matter). */
  placement?: EpPlacement;
}

/** Why a case is outside the capabilities, or undefined when it is declared. */
export function undeclaredReason(c: Capabilities | undefined, n: CaseNeeds): string | undefined {
  if (!c) return undefined;
  const not = (what: string, value: string | number, declared: readonly (string | number)[] | string) =>
    `${what} ${value} (declared: ${typeof declared === 'string' ? declared : declared.join(', ') || 'none'})`;
  if (c.modelTypes && !(c.modelTypes as readonly string[]).includes(n.modelType)) return not('model type', n.modelType, c.modelTypes);
  const layout = n.layouts.find((l) => c.layouts && !c.layouts.includes(l));
  if (layout !== undefined) return not('layout', layout, c.layouts!);
  if (c.dtypes && !c.dtypes.includes(n.dtype)) return not('dtype', n.dtype, c.dtypes);
  if (c.maxTp !== undefined && n.tp !== undefined && n.tp > c.maxTp) return not('TP size', n.tp, `up to ${c.maxTp}`);
  if (c.maxEp !== undefined && n.ep !== undefined && n.ep > c.maxEp) return not('EP size', n.ep, `up to ${c.maxEp}`);
  if (c.placements && n.placement !== undefined && (n.ep ?? 1) > 1 && !c.placements.includes(n.placement)) return not('EP placement', n.placement, c.placements);
  return undefined;
}

/** A loader as it declared itself: in a worker handshake, or by its command line and `--capabilities FILE`. */
export interface DeclaredLoader {
  name: string;
  version?: string;
  /** `worker` (spec §7), `command` (§2) or `in-process`. */
  mode: 'worker' | 'command' | 'in-process';
  capabilities?: Capabilities;
}

/** One line for people: `model types mixtral, olmoe; layouts fused; max TP 4; ...` (everything, when nothing is limited). */
export function describeCapabilities(c: Capabilities | undefined): string {
  if (!c) return 'not declared (every case is run)';
  const parts = [
    c.modelTypes && `model types ${c.modelTypes.join(', ') || 'none'}`,
    c.layouts && `layouts ${c.layouts.join(', ') || 'none'}`,
    c.dtypes && `dtypes ${c.dtypes.join(', ') || 'none'}`,
    c.quantization && `quantization ${c.quantization.join(', ') || 'none'}`,
    c.maxTp !== undefined && `max TP ${c.maxTp}`,
    c.maxEp !== undefined && `max EP ${c.maxEp}`,
    c.placements && `placements ${c.placements.join(', ') || 'none'}`,
    c.forms?.length && `forms ${c.forms.join(', ')}`,
  ].filter((p): p is string => typeof p === 'string');
  return parts.length ? parts.join('; ') : 'no limits declared';
}

function showJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}
