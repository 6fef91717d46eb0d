// The CLI as a person runs it: a separate process, its exit code and what it prints.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfCommand } from './args.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const fakes = join(ROOT, 'harness/protocol/test/fake-loaders');

interface Ran {
  code: number;
  out: string;
  err: string;
}
const sh = (line: string): Promise<Ran> =>
  promisify(execFile)('/bin/sh', ['-c', line], { cwd: ROOT, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
const cli = (args: string) => sh(`${process.execPath} --import tsx app/cli/main.ts ${args}`);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-main-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('moe-conformance (the process)', () => {
  it('alone prints the help (it does not start the whole suite)', async () => {
    const r = await cli('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: moe-conformance <command>/);
    expect(r.out).toContain('check');
  });

  it('--version, and --version of every command, print the package version', async () => {
    expect((await cli('--version')).out).toBe(`moe-conformance ${pkg.version}\n`);
    for (const command of ['run', 'check', 'golden', 'validate', 'inspect', 'load', 'generate', 'compare']) {
      const r = await cli(`${command} --version`);
      expect(r.code, command).toBe(0);
      expect(r.out, command).toBe(`moe-conformance ${pkg.version}\n`);
    }
  });

  it('lists every usage problem at once and exits 2', async () => {
    const r = await cli('check --loader x --tp 0 --ep 1,0 --jobs 0 --shard 3/2 --report html --cases 2');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--tp takes integers >= 1');
    expect(r.err).toContain('--ep takes integers >= 1');
    expect(r.err).toContain('--jobs takes an integer >= 1');
    expect(r.err).toContain('--shard');
    // `--cases` is the next option, not the report's file name.
    expect(r.err).toContain('--report takes FORMAT FILE, got --cases for FILE');
  });

  it('a replay names the CLI as the user\'s shell can run it: not the bare name that npx put on PATH for its own child', async () => {
    const main = join(ROOT, 'app/cli/main.ts');
    const project = join(dir, 'project');
    const bin = join(project, 'node_modules', '.bin');
    await mkdir(bin, { recursive: true });
    await symlink(main, join(bin, 'moe-conformance'));
    // Under `npx moe-conformance` (or an npm script) PATH starts with the project's node_modules/.bin.
    expect(selfCommand(project, `${bin}:/usr/bin`)).toBe('npx moe-conformance');
    expect(selfCommand(project, `${bin}/:/usr/bin`)).toBe('npx moe-conformance');
    // Installed on the user's PATH (npm install -g, a link in ~/bin): the bare name runs.
    const userBin = join(dir, 'user-bin');
    await mkdir(userBin, { recursive: true });
    await symlink(main, join(userBin, 'moe-conformance'));
    expect(selfCommand(project, `${bin}:${userBin}`)).toBe('moe-conformance');
    // Elsewhere, node with the CLI's path.
    expect(selfCommand(dir, bin)).toBe(`node --import tsx ${main}`);
  });

  it('a replay line printed by a failing check runs as printed and re-runs exactly that case', async () => {
    const json = join(dir, 'garbage.json');
    const first = await cli(`check --loader '${process.execPath} ${fakes}/garbage.mjs' --cases 2 --model-types mixtral --layouts fused --dtypes f32 --tp 1 --ep 1 --report json ${json}`);
    expect(first.code).toBe(1);
    const replay = /replay:\s+(.+)$/m.exec(first.out)?.[1];
    expect(replay, first.out).toBeDefined();
    expect(replay!.startsWith(selfCommand(ROOT))).toBe(true);
    const again = await sh(replay!);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/^1 case: 0 passed/m);
  });
});
