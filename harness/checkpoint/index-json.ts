// model.safetensors.index.json read straight into what the harness uses: the weight map
// (tensor name to shard file name) and metadata.total_size. Like the safetensors header
// (safetensors/header.ts), no generic tree is built: the weight map costs its entries (a
// shard name is one string however many tensors name it) and every other field is
// validated and skipped, so memory stays a small multiple of the file whatever its JSON.
import { JsonCursor, JsonDuplicateKey, JsonSyntaxError, jsonBytes, U64_MAX } from '../safetensors/json.js';
import { BadShardName, DuplicateIndexKey, InvalidIndex } from './errors.js';

export const INDEX_FILE = 'model.safetensors.index.json';
/** The largest index read (spec §5): a million tensors at ~100 bytes each fit four times over. */
export const INDEX_MAX_BYTES = 256 << 20;

export interface Index {
  file: string;
  weightMap: Map<string, string>;
  totalSize: bigint | undefined;
}

const [OPEN, CLOSE, QUOTE] = [0x7b, 0x7d, 0x22];

/**
 * The longest shard name: a file name is at most 255 bytes on Linux and macOS, 255 UTF-16
 * units on Windows. Checked as each is read, before it is a map key: 3,000 distinct names of
 * 16,400 characters (hashed by their length alone in V8, json.ts MAX_KEY_LENGTH) took 25 s.
 */
export const MAX_SHARD_NAME = 255;

/** Parse an index file's bytes: `{"metadata": {"total_size": N, ...} | null, "weight_map": {...}, ...}`. */
export function parseIndex(input: Uint8Array | string, file: string): Index {
  try {
    return read(new JsonCursor(jsonBytes(input, { file }), { file }), file);
  } catch (e) {
    if (e instanceof JsonDuplicateKey) throw new DuplicateIndexKey(e.reason, { file, expected: e.expected, found: e.found });
    if (e instanceof JsonSyntaxError) throw new InvalidIndex(e.reason, { file, expected: e.expected, found: e.found });
    throw e;
  }
}

function read(c: JsonCursor, file: string): Index {
  c.ws();
  if (c.peek() !== OPEN) throw new InvalidIndex('index must be a JSON object', { file, expected: 'object', found: c.kindAhead() });
  c.open(OPEN, 1);
  let weightMap: Map<string, string> | undefined;
  let totalSize: bigint | undefined;
  const seen = new Set<string>();
  if (!c.closesAt(CLOSE)) {
    do {
      const at = c.pos;
      const key = c.key();
      if (seen.has(key)) duplicate(c, key, at);
      seen.add(key);
      if (key === 'weight_map') weightMap = readWeightMap(c, file);
      else if (key === 'metadata') totalSize = readMetadata(c, file);
      else c.skipValue(1);
    } while (!c.next(CLOSE));
  }
  c.finish();
  if (!weightMap) throw new InvalidIndex('weight_map must be an object', { file, expected: 'object', found: 'nothing' });
  return { file, weightMap, totalSize };
}

function duplicate(c: JsonCursor, key: string, at: number): never {
  c.pos = at;
  return c.fail(`duplicate key ${JSON.stringify(key)}`, JsonDuplicateKey);
}

function readWeightMap(c: JsonCursor, file: string): Map<string, string> {
  if (c.peek() !== OPEN) throw new InvalidIndex('weight_map must be an object', { file, expected: 'object', found: c.kindAhead() });
  c.open(OPEN, 2);
  const map = new Map<string, string>();
  const shards = new Map<string, string>();
  if (c.closesAt(CLOSE)) return map;
  do {
    const at = c.pos;
    const tensor = c.key();
    if (map.has(tensor)) duplicate(c, tensor, at);
    if (c.peek() !== QUOTE) throw new InvalidIndex('weight_map values must be file names', { file, tensor, expected: 'string', found: c.kindAhead() });
    const shard = c.string();
    if (shard.length > MAX_SHARD_NAME) throw new BadShardName('shard name longer than a file name can be', { file, tensor, expected: `<= ${MAX_SHARD_NAME} characters`, found: `${shard.length} characters` });
    let same = shards.get(shard);
    if (same === undefined) shards.set(shard, (same = shard));
    map.set(tensor, same);
  } while (!c.next(CLOSE));
  return map;
}

/** metadata: null, or an object whose total_size, when there, is an integer (transformers writes one). */
function readMetadata(c: JsonCursor, file: string): bigint | undefined {
  if (c.peek() === 0x6e) {
    c.literal('null');
    return undefined;
  }
  if (c.peek() !== OPEN) throw new InvalidIndex('metadata must be an object', { file, expected: 'object', found: c.kindAhead() });
  c.open(OPEN, 2);
  let total: bigint | undefined;
  const seen = new Set<string>();
  if (c.closesAt(CLOSE)) return undefined;
  do {
    const at = c.pos;
    const key = c.key();
    if (seen.has(key)) duplicate(c, key, at);
    seen.add(key);
    if (key !== 'total_size') {
      c.skipValue(2);
      continue;
    }
    const bad = (found: string): never => {
      throw new InvalidIndex('metadata.total_size must be a non-negative integer', { file, found });
    };
    if (c.kindAhead() !== 'number') bad(c.kindAhead());
    const t = c.number();
    const text = c.text(t);
    if (!t.unsigned || text.length > 20) bad(text.length > 40 ? `a number of ${text.length} characters` : text);
    total = BigInt(text);
    if (total > U64_MAX) bad(text);
  } while (!c.next(CLOSE));
  return total;
}
