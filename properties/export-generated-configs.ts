// Writes the generators' configurations per model type (generated-configs.ts) as JSON, for
// golden/tools/check_generated_configs.py to build with transformers:
//   node --import tsx properties/export-generated-configs.ts /tmp/generated-configs.json
import { writeFileSync } from 'node:fs';
import { exportedSamples } from './generated-configs.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: export-generated-configs.ts OUT.json\n');
  process.exit(2);
}
writeFileSync(out, exportedSamples());
process.stderr.write(`configs for every model type written to ${out}\n`);
