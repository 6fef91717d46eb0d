// Shared by the fake loaders: the protocol arguments as an object.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
export function protocolArgs() {
  const a = process.argv.slice(2);
  const get = (k) => a[a.indexOf(k) + 1];
  return { checkpoint: get('--checkpoint'), out: get('--out'), tpSize: Number(get('--tp-size')), tpRank: Number(get('--tp-rank')), all: a };
}

/**
 * Writes a valid safetensors file of a U8 payload named `name` and the TP rank (I32), built by
 * hand so that the fakes do not depend on the code under test.
 */
export function writeRankFile(out, name, payload, tpRank) {
  const rank = Buffer.alloc(4);
  rank.writeInt32LE(tpRank);
  let header = JSON.stringify({
    [name]: { dtype: 'U8', shape: [payload.length], data_offsets: [0, payload.length] },
    rank: { dtype: 'I32', shape: [1], data_offsets: [payload.length, payload.length + 4] },
  });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(out, Buffer.concat([len, Buffer.from(header), payload, rank]));
}

/**
 * Runs the reference loader (`moe-conformance load`, through tsx) on the same arguments and
 * returns its output file's header and data, for a fake that edits them (exits as it did when
 * it refused).
 */
export function referenceRank(args) {
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'app', 'cli', 'main.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'load', ...args.all], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
  const file = readFileSync(args.out);
  const n = Number(file.readBigUInt64LE(0));
  return { header: JSON.parse(file.subarray(8, 8 + n).toString('utf8')), data: file.subarray(8 + n) };
}

/** Writes a safetensors file of `header` (offsets into the concatenated `parts`), its header padded to 8 bytes. */
export function writeSafetensorsFile(out, header, parts) {
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(out, Buffer.concat([len, Buffer.from(text), ...parts]));
}
