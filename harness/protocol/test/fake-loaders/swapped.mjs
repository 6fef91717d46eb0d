// The reference loader (`moe-conformance load`, through tsx) with one bug: every routed
// expert's w13 comes out with its gate and up halves swapped. It declares its name and
// version in the output's metadata (spec §2), as a loader may.
import { protocolArgs, referenceRank, writeSafetensorsFile } from './args.mjs';

const args = protocolArgs();
const { header, data } = referenceRank(args);
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
writeSafetensorsFile(args.out, header, [data]);
