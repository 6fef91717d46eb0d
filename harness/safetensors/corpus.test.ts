// The committed corpus of tricky headers: this reader's exact verdict on each, and its
// agreement with the reference's verdicts recorded by bench/fuzz/differential.ts (Python's
// safetensors, i.e. the Rust reader) in test/corpus-rust.json. Where they differ the case
// must name the rule of spec §5 that makes us stricter, so every difference is documented.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MoeConformanceError } from '../errors.js';
import { parseSafetensors } from './read.js';
import { CORPUS, corpusFile } from './test/corpus.js';

const recorded = JSON.parse(readFileSync(new URL('./test/corpus-rust.json', import.meta.url), 'utf8')) as {
  reference: string;
  verdicts: Record<string, { verdict: 'accept' | 'refuse'; error?: string }>;
};
const spec = readFileSync(new URL('../../spec/loader-protocol.md', import.meta.url), 'utf8');

function verdict(bytes: Uint8Array): string {
  try {
    parseSafetensors(bytes, 'corpus.safetensors');
    return 'accept';
  } catch (e) {
    expect(e).toBeInstanceOf(MoeConformanceError);
    return (e as Error).constructor.name;
  }
}

describe(`tricky headers: our verdict, and the reference's (${recorded.reference})`, () => {
  it('every case has a recorded reference verdict, and names are unique', () => {
    expect(new Set(CORPUS.map((c) => c.name)).size).toBe(CORPUS.length);
    expect(Object.keys(recorded.verdicts).sort()).toEqual(CORPUS.map((c) => c.name).sort());
  });

  it.each(CORPUS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const ours = verdict(corpusFile(c));
    expect(ours).toBe(c.ours);
    const reference = recorded.verdicts[c.name]!.verdict;
    if (c.difference) {
      // A documented stricter rule: we refuse what the reference accepts.
      expect([ours, reference]).toEqual([c.ours, 'accept']);
      expect(spec).toContain(`**${c.difference}`);
    } else {
      expect(ours === 'accept' ? 'accept' : 'refuse').toBe(reference);
    }
  });
});
