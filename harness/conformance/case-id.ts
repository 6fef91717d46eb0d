// Stable case IDs, in the manner of the WebGPU CTS query strings: a case is named by the
// parameters that define it, never by a seed or an index, so an ID means the same case in
// a results file, an expectations file and on the command line, run after run.
//
// Grammar (printed exactly like this, so parse and print round-trip):
//   id      = suite ":" test ":" params
//   params  = param *( ";" param )          (may be empty: "moe:golden:")
//   param   = key "=" value
//   suite, test, key = [a-z][a-z0-9_]*
//   value   = 1*[A-Za-z0-9_.+\-/x]          (no ':' ';' '=' '*' '#' or whitespace)
// A pattern (for expectations and --case filters) is an ID where suite or test may be "*",
// a value may contain "*" (any run of value characters), and params may end with ";*"
// (or be just "*"): any further parameters. Without the trailing "*", a pattern names
// exactly the given parameters, in any order.
import { MoeConformanceError } from '../errors.js';

export class CaseIdError extends MoeConformanceError {}

export type ParamValue = string | number | boolean;

export interface CaseId {
  readonly suite: string;
  readonly test: string;
  /** In the order that defines the printed form. */
  readonly params: ReadonlyArray<readonly [string, string]>;
}

export interface CasePattern {
  readonly suite: string; // '*' matches any
  readonly test: string; // '*' matches any
  /** Value patterns; '*' inside a value matches any run of characters. */
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** The pattern ended in '*': further parameters are allowed. */
  readonly openEnded: boolean;
}

/**
 * The longest case ID. IDs from results files are map keys (merge, diff, reports), and V8
 * hashes a string of more than 16,383 characters by its length alone: n such IDs of one
 * length would cost n² comparisons (safetensors/json.ts MAX_KEY_LENGTH). Real ones are a
 * few dozen characters.
 */
export const MAX_CASE_ID_LENGTH = 4096;

const NAME = /^[a-z][a-z0-9_]*$/;
const VALUE = /^[A-Za-z0-9_.+\-/]+$/;
const VALUE_PATTERN = /^[A-Za-z0-9_.+\-/*]+$/;

export function caseId(suite: string, test: string, params: Record<string, ParamValue>): CaseId {
  const entries = Object.entries(params).map(([k, v]) => [k, String(v)] as const);
  const id: CaseId = { suite, test, params: entries };
  validate(id, formatCaseId(id));
  return id;
}

export function formatCaseId(id: CaseId): string {
  return `${id.suite}:${id.test}:${id.params.map(([k, v]) => `${k}=${v}`).join(';')}`;
}

export function parseCaseId(text: string): CaseId {
  const { suite, test, params, openEnded } = split(text, false);
  if (openEnded) throw new CaseIdError('a case ID cannot end in a wildcard', { expected: 'suite:test:k=v;...', found: text });
  const id: CaseId = { suite, test, params };
  validate(id, text);
  return id;
}

export function parseCasePattern(text: string): CasePattern {
  const p = split(text, true);
  for (const name of [p.suite, p.test]) {
    if (name !== '*' && !NAME.test(name)) throw new CaseIdError('bad suite or test name in pattern', { expected: '[a-z][a-z0-9_]* or *', found: text });
  }
  for (const [k, v] of p.params) {
    if (!NAME.test(k) || !VALUE_PATTERN.test(v)) throw new CaseIdError(`bad parameter ${JSON.stringify(`${k}=${v}`)} in pattern`, { expected: 'key=value-pattern', found: text });
  }
  return p;
}

export function formatCasePattern(p: CasePattern): string {
  const parts = p.params.map(([k, v]) => `${k}=${v}`);
  if (p.openEnded) parts.push('*');
  return `${p.suite}:${p.test}:${parts.join(';')}`;
}

export function matchesPattern(p: CasePattern, id: CaseId): boolean {
  if (p.suite !== '*' && p.suite !== id.suite) return false;
  if (p.test !== '*' && p.test !== id.test) return false;
  // A scan of the ID's few parameters, not a Map per call: an expectations file's every line is
  // matched against every case.
  for (const [k, v] of p.params) {
    const found = id.params.find(([key]) => key === k)?.[1];
    if (found === undefined || !globMatch(v, found)) return false;
  }
  return p.openEnded || id.params.length === p.params.length;
}

/** Value of one parameter, or undefined. */
export function param(id: CaseId, key: string): string | undefined {
  return id.params.find(([k]) => k === key)?.[1];
}

/** FNV-1a 32-bit of the printed ID: the same on every machine, for `--shard i/n`. */
export function caseHash(id: CaseId | string): number {
  const text = typeof id === 'string' ? id : formatCaseId(id);
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function split(text: string, allowWildcard: boolean): CasePattern {
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  if (first < 0 || second < 0) throw new CaseIdError('a case ID has the form suite:test:params', { expected: 'suite:test:k=v;...', found: text });
  const suite = text.slice(0, first);
  const test = text.slice(first + 1, second);
  const rest = text.slice(second + 1);
  const pieces = rest === '' ? [] : rest.split(';');
  let openEnded = false;
  if (allowWildcard && pieces[pieces.length - 1] === '*') {
    openEnded = true;
    pieces.pop();
  }
  const params = pieces.map((piece): [string, string] => {
    const eq = piece.indexOf('=');
    if (eq <= 0) throw new CaseIdError(`parameter ${JSON.stringify(piece)} is not key=value`, { expected: 'key=value', found: text });
    return [piece.slice(0, eq), piece.slice(eq + 1)];
  });
  return { suite, test, params, openEnded };
}

function validate(id: CaseId, text: string): void {
  if (text.length > MAX_CASE_ID_LENGTH) throw new CaseIdError('case ID too long', { expected: `<= ${MAX_CASE_ID_LENGTH} characters`, found: `${text.length} characters` });
  if (!NAME.test(id.suite) || !NAME.test(id.test)) throw new CaseIdError('bad suite or test name', { expected: '[a-z][a-z0-9_]*', found: text });
  const seen = new Set<string>();
  for (const [k, v] of id.params) {
    if (!NAME.test(k)) throw new CaseIdError(`bad parameter name ${JSON.stringify(k)}`, { expected: '[a-z][a-z0-9_]*', found: text });
    if (!VALUE.test(v)) throw new CaseIdError(`bad value ${JSON.stringify(v)} for ${k}`, { expected: '[A-Za-z0-9_.+-/]+', found: text });
    if (seen.has(k)) throw new CaseIdError(`parameter ${k} given twice`, { expected: 'each parameter once', found: text });
    seen.add(k);
  }
}

/**
 * `*` matches any run of characters. Greedy with one backtrack point (the last star), so
 * time is O(pattern × value) whatever the stars: a regular expression of `.*`s backtracks
 * exponentially on `*a*a*a...b` from an expectations file.
 */
export function globMatch(pattern: string, value: string): boolean {
  let [p, v, star, mark] = [0, 0, -1, 0];
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) [p, v] = [p + 1, v + 1];
    else if (p < pattern.length && pattern[p] === '*') [star, mark, p] = [p, v, p + 1];
    else if (star >= 0) [p, v, mark] = [star + 1, mark + 1, mark + 1];
    else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
