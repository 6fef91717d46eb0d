// The reference loader (`moe-conformance load`, through tsx) with one bug: it leaves out every
// routed expert's w2 scale tensor (`layers.N.experts.w2_scale`) of a quantized checkpoint. A
// float checkpoint has no scales, so its cases pass: only the quantized cases can catch it.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolArgs } from './args.mjs';

const args = protocolArgs();
const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'app', 'cli', 'main.ts');
const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'load', ...args.all], { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) process.exit(r.status ?? 1);

const file = readFileSync(args.out);
const n = Number(file.readBigUInt64LE(0));
const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8'));
const data = file.subarray(8 + n);
// The kept tensors, packed again one after the other (safetensors leaves no holes).
const kept = {};
const parts = [];
let at = 0;
for (const [name, t] of Object.entries(header)) {
  if (name === '__metadata__') kept[name] = t;
  else if (!/\.experts\.w2_scale$/.test(name)) {
    const bytes = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    kept[name] = { ...t, data_offsets: [at, at + bytes.length] };
    parts.push(bytes);
    at += bytes.length;
  }
}
let text = JSON.stringify(kept);
text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
writeFileSync(args.out, Buffer.concat([len, Buffer.from(text), ...parts]));
