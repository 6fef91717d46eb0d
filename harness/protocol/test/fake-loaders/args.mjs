// Shared by the fake loaders: the protocol arguments as an object.
import { writeFileSync } from 'node:fs';
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
