// The reference loader (`moe-conformance load`, through tsx) with one bug: it leaves out every
// routed expert's w2 scale tensor (`layers.N.experts.w2_scale`) of a quantized checkpoint. A
// float checkpoint has no scales, so its cases pass: only the quantized cases can catch it.
import { protocolArgs, referenceRank, writeSafetensorsFile } from './args.mjs';

const args = protocolArgs();
const { header, data } = referenceRank(args);
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
writeSafetensorsFile(args.out, kept, parts);
