// The README's commands name paths that exist: in a clone (repo-relative), or in an installed
// package (node_modules/moe-conformance/..., which holds what package.json "files" ships).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_MODEL_TYPES } from '../properties/arbitraries/models.js';
import { defaultCaseCount } from '../properties/suite.js';

const ROOT = new URL('../', import.meta.url).pathname;
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
const INSTALLED = 'node_modules/moe-conformance/';

/** Every path given to --golden in the README's code blocks. */
export function goldenPaths(text: string): string[] {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => [...b.matchAll(/--golden\s+([^\s\\]+)/g)].map((m) => m[1]!));
}

describe('README', () => {
  it('names --golden paths that exist where the command runs', () => {
    const paths = goldenPaths(readme);
    // A clone has no node_modules/moe-conformance: the README gives the clone's form too.
    expect(paths.some((p) => !p.startsWith(INSTALLED))).toBe(true);
    for (const p of paths) {
      if (p.startsWith(INSTALLED)) {
        const inPackage = p.slice(INSTALLED.length);
        expect(pkg.files.some((f) => inPackage === f || inPackage.startsWith(`${f}/`)), p).toBe(true);
        expect(existsSync(join(ROOT, inPackage)), p).toBe(true);
      } else {
        expect(existsSync(join(ROOT, p)), p).toBe(true);
      }
    }
  });

  it('the counts the READMEs give are the registry\'s and the sampler\'s', () => {
    const types = ALL_MODEL_TYPES.length;
    expect(readme).toContain(`the layouts of ${types} MoE model types`);
    const suite = readFileSync(join(ROOT, 'properties/README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(suite).toContain(`generated checkpoints of all ${types} model types`);
    // check's default run at its default seed (42).
    const cases = defaultCaseCount(42);
    expect(suite).toContain(`(${cases} for the ${types} types)`);
    expect(readme.replace(/\s+/g, ' ')).toContain(`(${cases} generated — 100, or more where loading every one of the ${types} types`);
  });

  it('the check can fail: a path that exists nowhere is caught', () => {
    expect(goldenPaths('```sh\nx --golden nowhere/hf \\\n```')).toEqual(['nowhere/hf']);
    expect(existsSync(join(ROOT, 'nowhere/hf'))).toBe(false);
  });
});
