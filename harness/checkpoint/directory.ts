// A Hugging Face checkpoint folder: config.json plus either one `model.safetensors` (or
// several un-indexed *.safetensors files) or shards named by `model.safetensors.index.json`.
// Opening validates every shard's header and that shards and index agree exactly; after
// that, tensors are read by byte range from whichever shard holds them.
//
// With an index, a *.safetensors file that the index does not name is ignored, never opened,
// as transformers and vLLM's default loader do; it is listed in `ignored` so that a report can
// say so. Real repositories hold such files: Mistral's ship `consolidated.safetensors`
// (Mistral-native names) beside the HF shards, quantized ones at times a stray
// `model.safetensors`. A loader that globs `*.safetensors` loads them too (vLLM issue #40765,
// mlx-vlm PR #1464 / issue #1329).
// The exception: a `model.safetensors` the index does not name, which transformers reads
// instead of the index, is refused as ambiguous (AmbiguousCheckpoint).
// Without an index every *.safetensors file is read.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tensor } from '../tensor.js';
import { TensorNotFound } from '../safetensors/errors.js';
import { readBoundedFileAs } from '../safetensors/bounded-read.js';
import { SafetensorsFile, type TensorInfo } from '../safetensors/read.js';
import { ModelConfig } from './config.js';
import { INDEX_FILE, INDEX_MAX_BYTES, parseIndex, type Index } from './index-json.js';
import {
  AmbiguousCheckpoint,
  BadShardName,
  DuplicateTensor,
  InvalidIndex,
  MissingShard,
  NoWeights,
  TensorMissingFromShard,
  TensorNotIndexed,
  TotalSizeMismatch,
  UnsafeShardPath,
} from './errors.js';

export { INDEX_FILE };
export const SINGLE_FILE = 'model.safetensors';

/** Where a tensor lives: its header entry plus the full path of its shard. */
export type TensorLocation = TensorInfo & { file: string };

export class CheckpointDir {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    /** Shard file names (relative to `dir`), sorted. */
    readonly files: string[],
    /** *.safetensors file names beside an index that it does not name (never opened), sorted. */
    readonly ignored: string[],
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly where: Map<string, SafetensorsFile>,
  ) {}

  static async open(dir: string): Promise<CheckpointDir> {
    const config = await ModelConfig.read(dir);
    // Every entry, whatever its type: an index or a shard that is a directory or a FIFO is
    // refused when opened (NotARegularFile: what it is), never passed over. Symbolic links are
    // followed (the Hugging Face hub cache links every file to a blob).
    const present = await readdir(dir);
    const index = present.includes(INDEX_FILE) ? await readIndex(join(dir, INDEX_FILE)) : undefined;
    const weightFiles = present.filter((n) => n.endsWith('.safetensors')).sort();
    const files = index ? [...new Set(index.weightMap.values())].sort() : weightFiles;
    if (index && files.length === 0) throw new NoWeights('the index lists no tensors (its weight_map is empty)', { file: index.file, expected: 'at least one tensor', found: '0 tensors' });
    if (files.length === 0) throw new NoWeights('no *.safetensors file and no index', { file: dir });
    if (index) checkShardNames(dir, files, weightFiles);
    const indexed = new Set(files);
    // transformers reads model.safetensors whenever it exists, the index only without it; vLLM the index.
    if (index && weightFiles.includes(SINGLE_FILE) && !indexed.has(SINGLE_FILE)) {
      throw new AmbiguousCheckpoint(`both ${SINGLE_FILE} and an index that does not name it: transformers reads ${SINGLE_FILE}, vLLM and others the files the index names`, { file: join(dir, SINGLE_FILE), expected: `${SINGLE_FILE} or ${INDEX_FILE}, or an index that names ${SINGLE_FILE}`, found: 'both' });
    }
    const ignored = weightFiles.filter((n) => !indexed.has(n));

    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const name of files) shards.set(name, await SafetensorsFile.open(join(dir, name)));
      const where = locate(shards);
      if (index) checkIndex(dir, index, shards, where);
      return new CheckpointDir(dir, config, files, ignored, shards, where);
    } catch (e) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw e;
    }
  }

  /** Every tensor name, sorted. */
  tensorNames(): string[] {
    return [...this.where.keys()].sort();
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorLocation {
    const shard = this.shard(name);
    return { ...shard.info(name), file: shard.path };
  }

  read(name: string): Promise<Tensor> {
    return this.shard(name).readTensor(name);
  }

  readBytes(name: string, begin: number, end: number): Promise<Uint8Array> {
    return this.shard(name).readBytes(name, begin, end);
  }

  readRanges(name: string, ranges: ReadonlyArray<readonly [number, number]>): Promise<Uint8Array> {
    return this.shard(name).readRanges(name, ranges);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }

  private shard(name: string): SafetensorsFile {
    const s = this.where.get(name);
    if (!s) throw new TensorNotFound('no such tensor in the checkpoint', { file: this.dir, tensor: name });
    return s;
  }
}

async function readIndex(file: string): Promise<Index> {
  return parseIndex(await readBoundedFileAs(file, INDEX_MAX_BYTES, InvalidIndex), file);
}

/** A shard name must be a plain file name in the folder, ending in .safetensors. Linear in the names (a set, not a list: a folder of many files cannot make it hang). */
function checkShardNames(dir: string, named: string[], presentNames: string[]): void {
  const present = new Set(presentNames);
  for (const name of named) {
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || /^[A-Za-z]:/.test(name)) {
      throw new UnsafeShardPath('shard path leaves the folder or is not a plain file name', { file: join(dir, INDEX_FILE), found: name });
    }
    if (!name.endsWith('.safetensors')) throw new BadShardName('shard name does not end in .safetensors', { file: join(dir, INDEX_FILE), found: name });
    if (!present.has(name)) throw new MissingShard('index names a shard that is not in the folder', { file: join(dir, name) });
  }
}

/** Tensor name to the shard that holds it; a name in two shards is refused. */
function locate(shards: Map<string, SafetensorsFile>): Map<string, SafetensorsFile> {
  const where = new Map<string, SafetensorsFile>();
  for (const shard of shards.values()) {
    for (const name of shard.tensors.keys()) {
      const other = where.get(name);
      if (other) throw new DuplicateTensor('tensor stored in two files', { tensor: name, file: shard.path, found: [other.path, shard.path] });
      where.set(name, shard);
    }
  }
  return where;
}

function checkIndex(dir: string, index: Index, shards: Map<string, SafetensorsFile>, where: Map<string, SafetensorsFile>): void {
  for (const [tensor, name] of index.weightMap) {
    const shard = shards.get(name)!;
    if (!shard.tensors.has(tensor)) {
      throw new TensorMissingFromShard('index maps the tensor to a shard that does not hold it', { file: shard.path, tensor, found: where.get(tensor)?.path ?? 'in no shard' });
    }
  }
  let total = 0n;
  for (const [tensor, shard] of where) {
    if (index.weightMap.get(tensor) === undefined) throw new TensorNotIndexed('shard holds a tensor the index does not list', { file: shard.path, tensor });
    const [b, e] = shard.info(tensor).dataOffsets;
    total += BigInt(e - b);
  }
  if (index.totalSize !== undefined && index.totalSize !== total) {
    throw new TotalSizeMismatch('metadata.total_size is not the sum of the tensor byte lengths', { file: join(dir, INDEX_FILE), expected: total.toString(), found: index.totalSize.toString() });
  }
}
