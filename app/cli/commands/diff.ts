// moe-conformance diff BASE.json NEW.json: what changed between two runs' JSON results (a
// loader before and after a fix): the cases whose status changed and the cases only one run
// has, grouped by kind × model type × layout, with reasons. Exit 1 when a case got worse.
import { startCommand, type CommandDef } from '../options.js';
import { readResults } from '../../reporters/json.js';
import { diffResults, diffText } from '../../reporters/diff.js';

const DEF: CommandDef = {
  name: 'diff',
  synopsis: ['BASE.json NEW.json'],
  description: `Compares two results files written by --report json: every case whose status changed
(pass → fail, fail → pass, pass → inconclusive, ...) and every case only one of them has,
grouped by kind × model type × layout, each with its reason. Exit 0 when no case got worse,
1 when one did (to a status that fails the run, or from passing to inconclusive or skipped),
2 for a usage error.`,
  options: {},
  positionals: { name: 'results files', min: 2, max: 2 },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  p.problems.check();
  const [basePath, newPath] = p.positionals as [string, string];
  const d = diffResults(await readResults(basePath), await readResults(newPath));
  process.stdout.write(diffText(d, basePath, newPath));
  return d.worse > 0 ? 1 : 0;
}
