// moe-conformance compare DIR_A DIR_B: do two checkpoints hold the same canonical tensors
// (say, one model saved in two layouts)? Every rank of a TP × EP split is compared, streamed
// in bounded chunks; the first difference (or, with --all, every one) is named with its
// rank, tensor, element, bytes and values, and where each side read it from.
import { commandFailure, intOption, parse, UsageError } from '../args.js';
import { compareCheckpoints, describeCheckpointDifference, type CheckpointComparison } from '../../../harness/compare/checkpoints.js';
import { EP_PLACEMENTS } from '../../../harness/canonical/cut.js';
import type { EpPlacement } from '../../../harness/tensor.js';

const USAGE = `usage: moe-conformance compare DIR_A DIR_B [--tp-size T] [--ep-size P] [--ep-placement linear|round_robin] [--all] [--max-reported N]

Tells whether two checkpoint folders hold the same canonical tensors, bit for bit, for every
rank of a TP T × EP P split (defaults 1, 1, linear). A is taken as expected and B as found.
Stops at the first difference unless --all is given, which reports every differing tensor
(the first N in full, default 20). Exit 0 when they are the same, 1 when they differ or a
checkpoint cannot be loaded (the reason on stderr), 2 for a usage error.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      'tp-size': { type: 'string' },
      'ep-size': { type: 'string' },
      'ep-placement': { type: 'string' },
      all: { type: 'boolean' },
      'max-reported': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`give two checkpoint folders, got ${positionals.length}`);
  const [dirA, dirB] = positionals as [string, string];
  const placement = values['ep-placement'] ?? 'linear';
  if (!(EP_PLACEMENTS as readonly string[]).includes(placement)) throw new UsageError(`--ep-placement takes ${EP_PLACEMENTS.join(' or ')}, got ${JSON.stringify(placement)}`);
  const tpSize = intOption(values['tp-size'], 'tp-size', 1);
  const epSize = intOption(values['ep-size'], 'ep-size', 1);
  const maxReported = intOption(values['max-reported'], 'max-reported', 20);
  if (tpSize < 1 || epSize < 1 || maxReported < 1) throw new UsageError('--tp-size, --ep-size and --max-reported take integers >= 1');

  let r: CheckpointComparison;
  try {
    r = await compareCheckpoints(dirA, dirB, { tpSize, epSize, epPlacement: placement as EpPlacement, all: values.all ?? false, maxReported });
  } catch (e) {
    return commandFailure('compare', e);
  }
  if (r.same) {
    process.stdout.write(`same canonical tensors (${r.tensors} tensors, ${r.bytes} bytes, ${r.ranks} ranks)\n`);
    return 0;
  }
  const lines = [`checkpoints differ (A = ${dirA}, expected; B = ${dirB}, found)`, ...r.differences.map(describeCheckpointDifference)];
  if (r.unreported > 0) lines.push(`... and ${r.unreported} more differing tensor(s)`);
  process.stdout.write(lines.join('\n') + '\n');
  return 1;
}
