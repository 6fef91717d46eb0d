// The generators draw only configurations transformers builds as the registry says: the
// record made with Python (golden/generated-configs.json, by golden/tools/check_generated_configs.py)
// must be fresh (the very configs and tensor tables the generators produce today) and clean
// (every config built as the registry says, every counterexample of a constraint rejected).
// No Python here: a stale record fails with the two commands that remake it.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entryFor, MODEL_TYPES } from '../harness/layouts/registry.js';
import { modelSpecArb } from './arbitraries/dims.js';
import { exportedSamples, generatedConfigSamples, sampleHash, SAMPLE_SEED, SAMPLES_PER_TYPE } from './generated-configs.js';

const RECORD = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'generated-configs.json');
const REMAKE =
  'node --import tsx properties/export-generated-configs.ts /tmp/generated-configs.json && ' +
  '/work/venv/bin/python golden/tools/check_generated_configs.py /tmp/generated-configs.json --record golden/generated-configs.json';

interface RecordFile {
  transformers: string;
  seed: number;
  perType: number;
  samples: Array<{ id: string; hash: string; ok: boolean; excludedBy?: string; transformers?: string[] }>;
}

describe('generated configs are what transformers builds (golden/generated-configs.json)', () => {
  const record = JSON.parse(readFileSync(RECORD, 'utf8')) as RecordFile;

  it('the record is fresh: the same configs and tensor tables as the generators draw today', () => {
    expect(record.seed).toBe(SAMPLE_SEED);
    expect(record.perType).toBe(SAMPLES_PER_TYPE);
    const samples = generatedConfigSamples();
    const now = samples.map((s) => `${s.id} ${sampleHash(s)}${s.excludedBy ? ` excluded by ${s.excludedBy}` : ''}`);
    const recorded = record.samples.map((s) => `${s.id} ${s.hash}${s.excludedBy ? ` excluded by ${s.excludedBy}` : ''}`);
    expect(recorded, `stale record: remake it with\n  ${REMAKE}`).toEqual(now);
    // What the Python check reads: every sample with its config, both layouts' tensor tables and its fingerprint.
    const exported = JSON.parse(exportedSamples(samples)) as { samples: Array<{ id: string; hash: string; config: { model_type: string }; layouts: Record<string, { modules: string[]; tensors: object }> }> };
    expect(exported.samples.map((s) => `${s.id} ${s.hash}`)).toEqual(record.samples.map((s) => `${s.id} ${s.hash}`));
    for (const s of exported.samples) {
      expect(s.config.model_type, s.id).toBe(s.id.split(':')[0]);
      expect(Object.keys(s.layouts).sort(), s.id).toEqual(['fused', 'original']);
      expect(s.layouts['fused']!.modules.length, s.id).toBeGreaterThan(0);
    }
  }, 60_000);

  it('every drawn config was built by transformers as the registry says, every counterexample was not', () => {
    const bad = record.samples.filter((s) => !s.ok).map((s) => `${s.id}${s.excludedBy ? ` (counterexample of ${s.excludedBy}, yet built as the registry says)` : ''}: ${(s.transformers ?? []).join('; ')}`);
    expect(bad).toEqual([]);
    expect(record.transformers).toMatch(/^5\./);
  });

  it('covers every model type, and each constraint with a counterexample', () => {
    const types = new Set(record.samples.filter((s) => !s.excludedBy).map((s) => s.id.split(':')[0]));
    expect([...MODEL_TYPES].filter((t) => !types.has(t))).toEqual([]);
    for (const t of MODEL_TYPES) {
      for (const k of Object.keys(entryFor(t).constraints ?? {})) {
        expect(record.samples.some((s) => s.id.startsWith(`${t}:`) && s.excludedBy === k), `${t}: no counterexample of ${k}`).toBe(true);
      }
    }
  });
});

describe('the generators keep to the registry constraints', () => {
  it('never draw fewer experts than minExperts nor a missing shared expert where it is required', () => {
    // The configs the issue found: jamba with one expert, deepseek_v3/glm4_moe/dots1 (and deepseek_v2) with n_shared_experts 0.
    for (const t of MODEL_TYPES) {
      const c = entryFor(t).constraints ?? {};
      const drawn = fc.sample(modelSpecArb(t), { numRuns: 300, seed: 7 });
      if (c.minExperts !== undefined) expect(Math.min(...drawn.map((m) => m.experts)), t).toBeGreaterThanOrEqual(c.minExperts);
      if (c.sharedRequired) expect(Math.min(...drawn.map((m) => m.sharedIntermediate)), t).toBeGreaterThan(0);
    }
    expect(entryFor('jamba').constraints?.minExperts).toBe(2);
    for (const t of ['deepseek_v2', 'deepseek_v3', 'glm4_moe', 'dots1']) expect(entryFor(t).constraints?.sharedRequired, t).toBe(true);
  });
});
