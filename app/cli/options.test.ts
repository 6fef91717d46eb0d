// The option parser on words that are no option: names of Object.prototype's members
// (`--constructor`, `--__proto__`, `--toString`) were looked up on the options object and
// accepted silently as flags.
import { describe, expect, it } from 'vitest';
import { parseCommand, type CommandDef } from './options.js';

const def: CommandDef = { name: 't', synopsis: [''], description: '', options: { cases: { args: ['N'], help: 'n' } }, positionals: { name: 'DIR', min: 0, max: 9 } };

describe('parseCommand', () => {
  it.each(['--constructor', '--__proto__', '--toString', '--hasOwnProperty'])('%s is an unknown option', (word) => {
    const p = parseCommand(def, [word]);
    expect(p.problems.list).toEqual([`unknown option ${word}`]);
    expect(p.values.size).toBe(0);
  });

  it('a declared option and the common ones still parse', () => {
    const p = parseCommand(def, ['--cases', '3', '--help', 'd']);
    expect(p.problems.list).toEqual([]);
    expect(p.values.get('cases')).toEqual([['3']]);
    expect([p.help, p.positionals]).toEqual([true, ['d']]);
  });
});
