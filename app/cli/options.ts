// Every command declares its options once, as data: the parser, the usage errors and the
// `--help` text (each option with its default, required ones marked) all come from that one
// declaration. Parsing collects every problem before it fails, so a usage error lists all
// that is wrong at once (exit 2).
import { UsageError } from './args.js';
import { harnessVersion } from '../version.js';
import { findBackend, UnknownBackend } from '../../kernels/backends.js';
import { REPORT_FORMATS, type ReportFormat } from '../reporters/files.js';
import { parseShard, ShardSpecError, type Shard } from '../runner.js';

export interface OptionDef {
  /** Placeholder words for the value(s): `['N']`, `['FORMAT', 'FILE']`, or `['DIR...']` for one or more words. None: a flag. */
  args?: string[];
  help: string;
  /** Shown in --help; the command applies it. */
  default?: string;
  required?: boolean;
  /** The option may be given more than once. */
  repeatable?: boolean;
}

export interface CommandDef {
  name: string;
  /** Usage lines after `moe-conformance NAME`. */
  synopsis: string[];
  /** Paragraphs shown under the synopsis. */
  description: string;
  options: Record<string, OptionDef>;
  /** What positionals the command takes, for the parser's count check. */
  positionals?: { name: string; min: number; max: number };
}

/** What a parse gives: each option's words (one entry per occurrence), the positionals, and problems so far. */
export interface Parsed {
  values: Map<string, string[][]>;
  positionals: string[];
  problems: Problems;
  help: boolean;
}

/** Usage problems collected while reading options; `check()` throws them all as one UsageError. */
export class Problems {
  readonly list: string[] = [];
  add(problem: string): void {
    this.list.push(problem);
  }
  check(): void {
    if (this.list.length === 1) throw new UsageError(this.list[0]!);
    if (this.list.length > 1) throw new UsageError(`${this.list.length} problems:\n${this.list.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const HELP: OptionDef = { help: 'print this help' };
const VERSION: OptionDef = { help: "print the harness's version" };

export function withCommon(def: CommandDef): Record<string, OptionDef> {
  return { ...def.options, help: HELP, version: VERSION };
}

export function parseCommand(def: CommandDef, argv: readonly string[]): Parsed {
  const options = withCommon(def);
  const problems = new Problems();
  const values = new Map<string, string[][]>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '-h' || word === '--help') {
      help = true;
      continue;
    }
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('--')) {
      if (word.startsWith('-') && word.length > 1 && !/^-\d/.test(word)) problems.add(`unknown option ${word}`);
      else positionals.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = word.slice(2, eq < 0 ? undefined : eq);
    const def = Object.hasOwn(options, name) ? options[name] : undefined; // not `--constructor`, `--__proto__`: the prototype's
    if (def === undefined) {
      problems.add(`unknown option --${name}`);
      continue;
    }
    const args = def.args ?? [];
    const words: string[] = [];
    if (eq >= 0) {
      if (args.length !== 1 || args[0]!.endsWith('...')) problems.add(`--${name} cannot take a value with =`);
      else words.push(word.slice(eq + 1));
    } else if (args.length === 1 && args[0]!.endsWith('...')) {
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) words.push(argv[++i]!);
      if (words.length === 0) problems.add(`--${name} takes at least one ${args[0]!.slice(0, -3)}`);
    } else {
      for (let k = 0; k < args.length; k++) {
        const next = argv[i + 1];
        // A value never starts with `--`: `--report html --cases 2` is a missing FILE, not a file named --cases.
        if (next === undefined || next.startsWith('--')) {
          problems.add(`--${name} takes ${args.join(' ')}${next === undefined ? '' : `, got ${next} for ${args[k]}`}`);
          break;
        }
        words.push(argv[++i]!);
      }
    }
    if (words.length < args.length && !(args.length === 1 && args[0]!.endsWith('...'))) continue;
    const seen = values.get(name) ?? [];
    if (seen.length > 0 && !def.repeatable) problems.add(`--${name} is given more than once`);
    seen.push(words);
    values.set(name, seen);
  }
  if (values.has('version')) return { values, positionals, problems, help };
  if (!help) {
    for (const [name, o] of Object.entries(def.options)) {
      if (o.required && !values.has(name)) problems.add(`--${name} is required`);
    }
    const p = def.positionals;
    if (p === undefined && positionals.length > 0) problems.add(`unexpected argument ${positionals[0]}`);
    if (p !== undefined && positionals.length < p.min) problems.add(`give at least ${p.min} ${p.name}, got ${positionals.length}`);
    if (p !== undefined && positionals.length > p.max) problems.add(`give at most ${p.max} ${p.name}, got ${positionals.length}`);
  }
  return { values, positionals, problems, help };
}

/** The last value of a one-word option, or undefined. */
export function one(p: Parsed, name: string): string | undefined {
  return p.values.get(name)?.at(-1)?.[0];
}

export function flag(p: Parsed, name: string): boolean {
  return p.values.has(name);
}

/** Every value of a repeatable one-word option, or of a `DIR...` option, flattened. */
export function all(p: Parsed, name: string): string[] {
  return (p.values.get(name) ?? []).flat();
}

/** An integer option at least `min`, or the fallback; a bad value is a problem (and the fallback is returned). */
export function int(p: Parsed, name: string, fallback: number, min = 0): number {
  const v = one(p, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    p.problems.add(`--${name} takes an integer >= ${min}, got ${JSON.stringify(v)}`);
    return fallback;
  }
  return Number(v);
}

/** A comma-separated list of integers, each at least `min`. */
export function ints(p: Parsed, name: string, min = 1): number[] | undefined {
  const v = one(p, name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim());
  const bad = items.filter((s) => !/^\d+$/.test(s) || Number(s) < min);
  if (bad.length > 0 || items.length === 0) {
    p.problems.add(`--${name} takes integers >= ${min}, comma-separated, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return items.map(Number);
}

/** One of `allowed`, or the fallback. */
export function choice<T extends string>(p: Parsed, name: string, allowed: readonly T[], fallback: T): T {
  const v = one(p, name);
  if (v === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(v)) {
    p.problems.add(`--${name} takes one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return fallback;
  }
  return v as T;
}

/** A comma-separated subset of `allowed`, or undefined when the option is absent. */
export function choices<T extends string>(p: Parsed, name: string, allowed: readonly T[]): T[] | undefined {
  const v = one(p, name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (bad.length > 0 || items.length === 0) {
    p.problems.add(`--${name}: unknown ${bad.map((b) => JSON.stringify(b)).join(', ') || 'empty list'} (one or more of ${allowed.join(', ')})`);
    return undefined;
  }
  return items as T[];
}

/** The --help text: synopsis, description, then every option with its value words, default and whether it is required. */
export function helpText(def: CommandDef): string {
  const rows = Object.entries(withCommon(def)).map(([name, o]) => {
    const head = `--${name}${o.args ? ' ' + o.args.join(' ') : ''}`;
    const notes = [o.required ? 'required' : undefined, o.default !== undefined ? `default ${o.default}` : undefined, o.repeatable ? 'repeatable' : undefined].filter(Boolean);
    return [head, `${o.help}${notes.length ? ` (${notes.join('; ')})` : ''}`] as const;
  });
  const width = Math.min(28, Math.max(...rows.map(([h]) => h.length)));
  const lines = rows.map(([h, text]) => (h.length > width ? `  ${h}\n  ${' '.repeat(width)}  ${text}` : `  ${h.padEnd(width)}  ${text}`));
  const synopsis = def.synopsis.map((s, i) => `${i === 0 ? 'usage: ' : '       '}moe-conformance ${def.name} ${s}`.trimEnd());
  return `${synopsis.join('\n')}\n\n${def.description}\n\noptions:\n${lines.join('\n')}\n`;
}

/**
 * Parses a command's argv. `--help` prints the help and `--version` the version (the
 * command then returns 0); otherwise the parse, whose problems the command checks after
 * reading its values, so that all usage problems are reported together.
 */
export function startCommand(def: CommandDef, argv: readonly string[]): Parsed | 0 {
  const p = parseCommand(def, argv);
  if (p.values.has('version')) {
    process.stdout.write(`moe-conformance ${harnessVersion()}\n`);
    return 0;
  }
  if (p.help) {
    process.stdout.write(helpText(def));
    return 0;
  }
  return p;
}

/** The `--report FORMAT FILE` pairs; an unknown format is a problem. */
export function reportsOf(p: Parsed): Array<[ReportFormat, string]> {
  const out: Array<[ReportFormat, string]> = [];
  for (const [format, file] of p.values.get('report') ?? []) {
    if (!(REPORT_FORMATS as readonly string[]).includes(format!)) p.problems.add(`--report takes FORMAT FILE with FORMAT one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    else out.push([format as ReportFormat, file!]);
  }
  return out;
}

/** `--shard i/n`, or undefined; a malformed one is a problem. */
export function shardOf(p: Parsed): Shard | undefined {
  const v = one(p, 'shard');
  if (v === undefined) return undefined;
  try {
    return parseShard(v);
  } catch (e) {
    if (!(e instanceof ShardSpecError)) throw e;
    p.problems.add(`--shard: ${e.message}`);
    return undefined;
  }
}

/** Kernel backend names or aliases (comma-separated), each known to the registry, or the fallback. */
export function backends(p: Parsed, name: string, fallback: string[]): string[] {
  const v = one(p, name);
  if (v === undefined) return fallback;
  const names = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) p.problems.add(`--${name} needs at least one backend`);
  for (const n of names) {
    try {
      findBackend(n);
    } catch (e) {
      if (!(e instanceof UnknownBackend)) throw e;
      p.problems.add(`--${name}: ${e.message}`);
    }
  }
  return names;
}
