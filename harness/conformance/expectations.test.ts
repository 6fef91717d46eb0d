import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCaseId } from './case-id.js';
import { Expectations, ExpectationsError, unpadded } from './expectations.js';

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

  it('matches a failure by its reason or diagnosis kind, not only by ID', () => {
    const e = Expectations.parse(
      [
        'moe:*:*                fail reason=/FP8\\sis\\snot\\ssupported/i  # no FP8 yet',
        'moe:load:model=*;*     fail diagnosis=*-swapped                    # gate/up order',
        'moe:refuse:*           fail reason=/never/ diagnosis=nan-or-inf    # stale',
      ].join('\n'),
      'engine.txt',
    );
    const id = parseCaseId('moe:load:model=mixtral;tp=2');
    // Conditional lines never apply before a case runs: it is neither skipped nor expected to fail.
    expect(e.lookup(id)).toBeUndefined();
    expect(e.lookupFailure(id, { message: 'LoaderRefused: loader exited 1\nfp8 is not supported' })).toMatchObject({ line: 1, reason: 'no FP8 yet' });
    expect(e.lookupFailure(id, { message: 'bytes differ', diagnosis: [{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: '' }] } as never)).toMatchObject({ line: 2 });
    expect(e.lookupFailure(id, { message: 'bytes differ', diagnosis: [{ tensor: 'x', kind: 'transposed', detail: '' }] } as never)).toBeUndefined();
    expect(e.lookupFailure(id, { message: 'bytes differ' })).toBeUndefined();
    expect(e.lookupFailure(parseCaseId('moe:refuse:model=mixtral'), { message: 'never', diagnosis: [{ kind: 'unknown' }] } as never)).toBeUndefined();
    expect(e.unused()).toEqual(['engine.txt:3: moe:refuse:* fail (with a failure condition) matched no failure']);
    expect(() => Expectations.parse('moe:*:* skip reason=/x/')).toThrow(/a skip cannot depend on how the case fails/);
    expect(() => Expectations.parse('moe:*:* fail because=x')).toThrow(/unknown condition/);
    expect(() => Expectations.parse('moe:*:* fail reason=x')).toThrow(/reason takes \/REGEX\//);
    expect(() => Expectations.parse('moe:*:* fail reason=/(/')).toThrow(/bad regular expression/);
    // A diagnosis pattern that no kind matches (a guessed name) is refused with the kinds, not left to match nothing.
    expect(() => Expectations.parse('moe:load:model=*;* fail diagnosis=swapped-*', 'e.txt')).toThrow(/line 1: diagnosis=swapped-\* matches no diagnosis kind \(expected gate-up-swapped \| .*transposed.*, found swapped-\*\)/);
    // A malformed pattern says its expected and found once.
    let thrown: Error | undefined;
    try {
      Expectations.parse('moe:layout:*;* fail', 'e.txt');
    } catch (err) {
      thrown = err as Error;
    }
    expect(thrown?.message).toMatch(/^line 1: parameter "\*" is not key=value \(expected key=value, found moe:layout:\*;\*\) \[file e\.txt\]$/);
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

describe('reason=/REGEX/', () => {
  const id = parseCaseId('moe:load:model=mixtral');
  it('refuses the flags g and y, which would make the same message match one case and not the next', () => {
    expect(() => Expectations.parse('moe:*:* fail reason=/FP8/g', 'e.txt')).toThrow(/line 1: reason's regular expression cannot take the flags g or y .*found reason=\/FP8\/g\) \[file e\.txt\]/);
    expect(() => Expectations.parse('moe:*:* fail reason=/FP8/iy')).toThrow(ExpectationsError);
    const e = Expectations.parse('moe:*:* fail reason=/FP8/i');
    for (let i = 0; i < 3; i++) expect(e.lookupFailure(id, { message: 'fp8 is not supported' })).toMatchObject({ line: 1 });
  });

  it('drops a leading or trailing .* (it never changes whether a search matches) so that /.*FP8.*/ is linear in a long message', () => {
    expect(unpadded('.*FP8.*')).toBe('FP8');
    expect(unpadded('.*?FP8\\s.*?')).toBe('FP8\\s');
    expect(unpadded('a\\.*')).toBe('a\\.*'); // an escaped dot, then *: kept
    expect(unpadded('a\\\\.*')).toBe('a\\\\'); // an escaped backslash, then .*
    expect(unpadded('.**')).toBe('.**'); // not a .* followed by nothing: left for RegExp to refuse
    expect(unpadded('[.*]')).toBe('[.*]');
    // The same verdicts, padded or not, on messages that match and messages that do not.
    const messages = ['LoaderRefused: FP8 is not supported', 'fp8', 'no', 'line one\nFP8 on line two', ''];
    for (const [padded, flags] of [['.*FP8.*', ''], ['.*?FP8', 'i'], ['FP8.*', 'm'], ['.*', ''], ['.*^FP8.*', 'm'], ['.*x|.*FP8', 's']] as const) {
      const bare = new RegExp(unpadded(padded), flags);
      for (const m of messages) expect(bare.test(m), `${padded} on ${JSON.stringify(m)}`).toBe(new RegExp(padded, flags).test(m));
    }
    // What the line holds is the bare pattern: a megabyte message is one linear scan, not a scan from every start.
    const e = Expectations.parse('moe:*:* fail reason=/.*FP8\\sis\\snot.*/');
    const long = `${'x'.repeat(1 << 20)} FP8 is not supported`;
    expect(e.lookupFailure(id, { message: long })).toMatchObject({ line: 1 });
    expect(e.lookupFailure(id, { message: 'x'.repeat(1 << 20) })).toBeUndefined();
  });
});
