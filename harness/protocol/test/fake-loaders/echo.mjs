// Writes a valid safetensors file holding its own argv (as U8 bytes) and the TP rank (as I32),
// built by hand here so that the test does not depend on the code under test.
import { writeFileSync } from 'node:fs';
import { protocolArgs } from './args.mjs';
const a = protocolArgs();
const argv = Buffer.from(JSON.stringify(a.all));
const rank = Buffer.alloc(4);
rank.writeInt32LE(a.tpRank);
let header = JSON.stringify({
  argv: { dtype: 'U8', shape: [argv.length], data_offsets: [0, argv.length] },
  rank: { dtype: 'I32', shape: [1], data_offsets: [argv.length, argv.length + 4] },
});
header += ' '.repeat((8 - (header.length % 8)) % 8);
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(header.length));
writeFileSync(a.out, Buffer.concat([len, Buffer.from(header), argv, rank]));
