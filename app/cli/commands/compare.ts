// moe-conformance compare DIR_A DIR_B: do two checkpoints hold the same canonical tensors
// (say, one model saved in two layouts)? Every rank of a TP × EP split is compared, streamed
// in bounded chunks; the first difference (or, with --all, every one) is named with its
// rank, tensor, element, bytes and values, and where each side read it from.
import { commandFailure } from '../args.js';
import { choice, flag, int, startCommand, type CommandDef } from '../options.js';
import { compareCheckpoints, describeCheckpointDifference, type CheckpointComparison } from '../../../harness/compare/checkpoints.js';
import { EP_PLACEMENTS } from '../../../harness/canonical/cut.js';
import { plural } from '../../../harness/errors.js';

const DEF: CommandDef = {
  name: 'compare',
  synopsis: ['DIR_A DIR_B [options]'],
  description: `Tells whether two checkpoint folders hold the same canonical tensors, bit for bit, for every
rank of a TP T × EP P split. A is taken as expected and B as found. Stops at the first
difference unless --all is given. Exit 0 when they are the same, 1 when they differ or a
checkpoint cannot be loaded (the reason on stderr), 2 for a usage error.`,
  options: {
    'tp-size': { args: ['T'], help: 'TP size, >= 1', default: '1' },
    'ep-size': { args: ['P'], help: 'EP size, >= 1', default: '1' },
    'ep-placement': { args: ['X'], help: `EP placement: ${EP_PLACEMENTS.join(' or ')}`, default: 'linear' },
    all: { help: 'report every differing tensor' },
    'max-reported': { args: ['N'], help: 'with --all, differences reported in full, >= 1', default: '20' },
  },
  positionals: { name: 'checkpoint folders', min: 2, max: 2 },
};

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  const placement = choice(p, 'ep-placement', EP_PLACEMENTS, 'linear');
  const tpSize = int(p, 'tp-size', 1, 1);
  const epSize = int(p, 'ep-size', 1, 1);
  const maxReported = int(p, 'max-reported', 20, 1);
  p.problems.check();
  const [dirA, dirB] = p.positionals as [string, string];

  let r: CheckpointComparison;
  try {
    r = await compareCheckpoints(dirA, dirB, { tpSize, epSize, epPlacement: placement, all: flag(p, 'all'), maxReported });
  } catch (e) {
    return commandFailure('compare', e);
  }
  if (r.same) {
    process.stdout.write(`same canonical tensors (${plural(r.tensors, 'tensor')}, ${plural(r.bytes, 'byte')}, ${plural(r.ranks, 'rank')})\n`);
    return 0;
  }
  const lines = [`checkpoints differ (A = ${dirA}, expected; B = ${dirB}, found)`, ...r.differences.map(describeCheckpointDifference)];
  if (r.unreported > 0) lines.push(`... and ${r.unreported} more differing tensor(s)`);
  process.stdout.write(lines.join('\n') + '\n');
  return 1;
}
