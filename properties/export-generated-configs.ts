// Writes the generators' configurations per model type (generated-configs.ts) as JSON, for
// golden/tools/check_generated_configs.py to build with transformers:
//   node --import tsx properties/export-generated-configs.ts /tmp/generated-configs.json
import { writeFileSync } from 'node:fs';
import { generatedConfigSamples, SAMPLE_SEED, SAMPLES_PER_TYPE, sampleHash } from './generated-configs.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: export-generated-configs.ts OUT.json\n');
  process.exit(2);
}
const samples = generatedConfigSamples().map((s) => ({ ...s, hash: sampleHash(s) }));
writeFileSync(out, JSON.stringify({ seed: SAMPLE_SEED, perType: SAMPLES_PER_TYPE, samples }, null, 1) + '\n');
process.stderr.write(`${samples.length} configs (${samples.filter((s) => s.excludedBy).length} counterexamples) written to ${out}\n`);
