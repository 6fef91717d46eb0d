// The reference loader (`moe-conformance load`, through tsx) with one bug: every routed
// expert's w13 comes out with its gate and up halves swapped. It declares its name and
// version in the output's metadata (spec §2), as a loader may.
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
const size = { F32: 4, F16: 2, BF16: 2 };
for (const [name, t] of Object.entries(header)) {
  if (!name.endsWith('.experts.w13')) continue;
  const [E, R, H] = t.shape;
  const row = H * size[t.dtype];
  const [a] = t.data_offsets;
  for (let e = 0; e < E; e++) {
    const at = a + e * R * row;
    const gate = Buffer.from(data.subarray(at, at + (R / 2) * row));
    data.copy(data, at, at + (R / 2) * row, at + R * row);
    gate.copy(data, at + (R / 2) * row);
  }
}
header.__metadata__ = { ...(header.__metadata__ ?? {}), 'moe_conformance.loader_name': 'swapped-demo', 'moe_conformance.loader_version': '0.0.1' };
let text = JSON.stringify(header);
text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
writeFileSync(args.out, Buffer.concat([len, Buffer.from(text), data]));
