// Write a checkpoint folder the way transformers' save_pretrained does: config.json, then
// either one `model.safetensors` or `model-0000k-of-0000N.safetensors` shards plus
// `model.safetensors.index.json` ({"metadata": {"total_size"}, "weight_map": {...}}, keys
// sorted, indent 2), every shard with __metadata__
// {"format":"pt"}. Files from an earlier save that this one does not produce (stale shards,
// a stale index) are removed, as save_pretrained does.
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomically } from '../safetensors/atomic-write.js';
import { SafetensorIoError } from '../safetensors/errors.js';
import { tensorByteLength } from '../safetensors/read.js';
import { writeSafetensors, type TensorSource } from '../safetensors/write.js';
import { CONFIG_FILE } from './config.js';
import { INDEX_FILE, SINGLE_FILE } from './directory.js';
import { ConfigError, ShardPlanError } from './errors.js';
import { pythonJson } from './pyjson.js';

/**
 * Greedy filling in the order given, like huggingface_hub's split_state_dict_into_shards
 * (a tensor that would tip a shard over the limit starts the next one; a tensor bigger than
 * the limit gets a shard of its own), or an explicit tensor -> shard index assignment.
 */
export type ShardPlan = { maxShardBytes: number } | { assignment: Map<string, number>; files: number };

/** transformers' default max_shard_size ("5GB" = 5 * 10^9 bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

const SHARD_PATTERN = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

const shardName = (k: number, n: number): string =>
  n === 1 ? SINGLE_FILE : `model-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

export async function writeCheckpointDir(
  dir: string,
  config: Record<string, unknown>,
  tensors: Map<string, TensorSource> | Array<[string, TensorSource]>,
  plan: ShardPlan = { maxShardBytes: DEFAULT_MAX_SHARD_BYTES },
): Promise<void> {
  const list = [...tensors];
  const sizes = list.map(([name, t]) => tensorByteLength(t.dtype, t.shape, undefined, name));
  const shards = 'maxShardBytes' in plan ? greedy(list, sizes, plan.maxShardBytes) : assigned(list, plan);
  checkFinite(config);

  await mkdir(dir, { recursive: true }).catch((e: Error) => {
    throw new SafetensorIoError(`cannot create the folder: ${e.message}`, { file: dir });
  });
  const names = shards.map((_, k) => shardName(k, shards.length));
  for (let k = 0; k < shards.length; k++) await writeSafetensors(join(dir, names[k]!), shards[k]!, { format: 'pt' });
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, k) => shard.forEach(([name]) => Object.defineProperty(weightMap, name, { value: names[k], enumerable: true })));
    // transformers v5 also writes total_parameters, the model's parameter count; buffers
    // saved with it (e_score_correction_bias, ...) are not parameters, so it cannot be
    // derived from the tensors and is left out, as transformers v4 did.
    const totalSize = sizes.reduce((a, b) => a + b, 0);
    await writeText(join(dir, INDEX_FILE), pythonJson({ metadata: { total_size: totalSize }, weight_map: weightMap }) + '\n');
  }
  await writeText(join(dir, CONFIG_FILE), pythonJson(config) + '\n');
  await removeStale(dir, new Set(shards.length > 1 ? [...names, INDEX_FILE] : names));
}

type Entry = [string, TensorSource];

function greedy(list: Entry[], sizes: number[], max: number): Entry[][] {
  if (!Number.isSafeInteger(max) || max <= 0) throw new ShardPlanError('maxShardBytes must be a positive integer', { found: max });
  const shards: Entry[][] = [];
  let current: Entry[] = [];
  let currentSize = 0;
  list.forEach((entry, i) => {
    const size = sizes[i]!;
    if (size > max) {
      shards.push([entry]);
      return;
    }
    if (currentSize + size > max) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(entry);
    currentSize += size;
  });
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

function assigned(list: Entry[], plan: { assignment: Map<string, number>; files: number }): Entry[][] {
  const { assignment, files } = plan;
  if (!Number.isSafeInteger(files) || files < 1) throw new ShardPlanError('files must be a positive integer', { found: files });
  const shards: Entry[][] = Array.from({ length: files }, () => []);
  for (const entry of list) {
    const k = assignment.get(entry[0]);
    if (k === undefined || !Number.isInteger(k) || k < 0 || k >= files) {
      throw new ShardPlanError('tensor has no valid shard in the plan', { tensor: entry[0], expected: `0..${files - 1}`, found: k ?? 'nothing' });
    }
    shards[k]!.push(entry);
  }
  const empty = shards.findIndex((s) => s.length === 0);
  // transformers never writes an empty shard, and the index could not name one.
  if (files > 1 && empty >= 0) throw new ShardPlanError('a shard of the plan gets no tensor', { found: empty });
  return shards;
}

/** Python writes NaN/Infinity, which strict JSON readers (ours included) refuse. */
function checkFinite(v: unknown, path: string[] = []): void {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new ConfigError(`field ${path.join('.')} is not a finite number`, { file: CONFIG_FILE, found: String(v) });
  if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) checkFinite(x, [...path, k]);
}

function writeText(path: string, text: string): Promise<void> {
  return writeAtomically(path, (handle) => handle.writeFile(text));
}

async function removeStale(dir: string, keep: Set<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if ((SHARD_PATTERN.test(name) || name === INDEX_FILE) && !keep.has(name)) await unlink(join(dir, name));
  }
}
