import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCaseId } from './case-id.js';
import { Expectations, ExpectationsError } from './expectations.js';

const text = `# known problems
moe:load:model=gpt_oss;*          fail   # interleaved biases
moe:load:model=gpt_oss;tp=4;*     skip   # never reached: the line above wins

moe:forward:*  skip
`;

describe('expectations', () => {
  it('looks up the first matching line', () => {
    const e = Expectations.parse(text, 'x.txt');
    expect(e.lookup(parseCaseId('moe:load:model=gpt_oss;tp=4'))).toMatchObject({ kind: 'fail', reason: 'interleaved biases', line: 2 });
    expect(e.lookup(parseCaseId('moe:forward:model=dbrx'))).toMatchObject({ kind: 'skip', reason: '', line: 5 });
    expect(e.lookup(parseCaseId('moe:load:model=dbrx'))).toBeUndefined();
    expect(e.unused()).toEqual(['x.txt:3: moe:load:model=gpt_oss;tp=4;* skip matched no case']);
  });

  it('refuses bad lines naming the file and line', () => {
    expect(() => Expectations.parse('moe:load:*  pass', 'e.txt')).toThrow(/line 1: unknown expectation.*expected fail or skip, found pass.*e\.txt/);
    expect(() => Expectations.parse('ok\nmoe:load:*', 'e.txt')).toThrow(ExpectationsError);
    expect(() => Expectations.parse('\n\nmoe:load  fail', 'e.txt')).toThrow(/line 3/);
  });

  it('reads a file, and says so when it cannot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moe-exp-'));
    try {
      await writeFile(join(dir, 'e.txt'), text);
      expect((await Expectations.read(join(dir, 'e.txt'))).entries).toHaveLength(3);
      await expect(Expectations.read(join(dir, 'missing.txt'))).rejects.toThrow(ExpectationsError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
