// config.json of a Hugging Face model, with typed field access. Field paths are dotted
// ('ffn_config.moe_num_experts'); a list of paths means aliases, the first present wins.
// A field set to null counts as absent (Python's None: "not set"), so a fallback applies.
import { join } from 'node:path';
import { readBoundedFile } from '../safetensors/bounded-read.js';
import { JsonSyntaxError, parseStrictJson, toPlain } from '../safetensors/json.js';
import { ConfigError } from './errors.js';

export const CONFIG_FILE = 'config.json';
/** The largest config.json read (spec §5); real ones are kilobytes. */
export const CONFIG_MAX_BYTES = 16 << 20;

type Path = string | string[];

export class ModelConfig {
  readonly modelType: string;

  /** `file` names the source in errors (config.json by default). */
  constructor(
    readonly raw: Record<string, unknown>,
    readonly file: string = CONFIG_FILE,
  ) {
    this.modelType = this.str('model_type');
  }

  static async read(dir: string): Promise<ModelConfig> {
    const file = join(dir, CONFIG_FILE);
    let bytes: Uint8Array;
    try {
      bytes = await readBoundedFile(file, CONFIG_MAX_BYTES);
    } catch (e) {
      throw new ConfigError(`cannot read: ${(e as Error).message}`, { file });
    }
    let raw: unknown;
    try {
      raw = toPlain(parseStrictJson(bytes, { file }));
    } catch (e) {
      if (e instanceof JsonSyntaxError) throw new ConfigError(e.reason, { file });
      throw e;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError('config must be a JSON object', { file, expected: 'object', found: Array.isArray(raw) ? 'array' : typeof raw });
    }
    return new ModelConfig(raw as Record<string, unknown>, file);
  }

  /** Whether any alias is present and not null. */
  has(path: Path): boolean {
    return this.find(path) !== undefined;
  }

  /** A safe integer (1.0 counts: Python writes some integers as floats). */
  int(path: Path, fallback?: number): number {
    return this.field(path, fallback, 'an integer', (v): v is number => typeof v === 'number' && Number.isSafeInteger(v));
  }

  num(path: Path, fallback?: number): number {
    return this.field(path, fallback, 'a finite number', (v): v is number => typeof v === 'number' && Number.isFinite(v));
  }

  bool(path: Path, fallback?: boolean): boolean {
    return this.field(path, fallback, 'a boolean', (v): v is boolean => typeof v === 'boolean');
  }

  str(path: Path, fallback?: string): string {
    return this.field(path, fallback, 'a string', (v): v is string => typeof v === 'string');
  }

  private field<T>(path: Path, fallback: T | undefined, expected: string, ok: (v: unknown) => v is T): T {
    const hit = this.find(path);
    if (hit === undefined) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`missing field ${aliases(path).join(' or ')}`, { file: this.file, expected, found: 'nothing' });
    }
    // As JSON, so that a string "4" does not read as the number 4.
    if (!ok(hit.value)) throw new ConfigError(`field ${hit.path} has the wrong type`, { file: this.file, expected, found: JSON.stringify(hit.value) });
    return hit.value;
  }

  private find(path: Path): { path: string; value: unknown } | undefined {
    for (const p of aliases(path)) {
      let v: unknown = this.raw;
      for (const part of p.split('.')) {
        v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, part) ? (v as Record<string, unknown>)[part] : undefined;
      }
      if (v !== undefined && v !== null) return { path: p, value: v };
    }
    return undefined;
  }
}

const aliases = (path: Path): string[] => (typeof path === 'string' ? [path] : path);
