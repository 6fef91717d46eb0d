// moe-conformance load: the reference loader as a protocol command (spec §2). Writes one
// rank's canonical tensors to --out, streamed piece by piece; refusals go to stderr.
import { commandFailure } from '../args.js';
import { choice, flag, int, one, startCommand, type CommandDef } from '../options.js';
import { materialize, planLoad, writePlan } from '../../../harness/loader/load.js';
import { dequantizeCanonical } from '../../../harness/quant/dequantize.js';
import { DEQUANTIZED_METADATA_KEY, schemeOf } from '../../../harness/quant/scheme.js';
import { writeSafetensors } from '../../../harness/safetensors/write.js';
import { EP_PLACEMENTS } from '../../../harness/canonical/cut.js';
import type { ParallelRequest } from '../../../harness/tensor.js';
import { serveWorker } from '../../../harness/protocol/serve.js';

/** What the reference loader says in a worker handshake; changes when its output would. */
const REFERENCE_LOADER_VERSION = '1';

const DEF: CommandDef = {
  name: 'load',
  synopsis: ['--checkpoint DIR --out FILE [options]', '--worker [--dequantize]'],
  description: `Writes the canonical tensors of TP rank r of T and EP rank q of P to FILE as one safetensors
file; exits 1 with the reason on stderr when the checkpoint or the request cannot be loaded
correctly. For a quantized checkpoint (spec §4) the expert weights keep their quantized bytes
with their scales; --dequantize writes them as F32 instead and declares it in the file's
__metadata__ (${DEQUANTIZED_METADATA_KEY}: "true"). With --worker it serves the worker protocol
(spec §7) on stdin and stdout instead: one process, many requests.`,
  options: {
    checkpoint: { args: ['DIR'], help: 'the model folder (required without --worker)' },
    out: { args: ['FILE'], help: 'the safetensors file to write (required without --worker)' },
    'tp-size': { args: ['T'], help: 'TP size', default: '1' },
    'tp-rank': { args: ['r'], help: 'TP rank', default: '0' },
    'ep-size': { args: ['P'], help: 'EP size', default: '1' },
    'ep-rank': { args: ['q'], help: 'EP rank', default: '0' },
    'ep-placement': { args: ['X'], help: `EP placement: ${EP_PLACEMENTS.join(' or ')}`, default: 'linear' },
    dequantize: { help: 'write quantized expert weights as F32' },
    worker: { help: 'serve the worker protocol (spec §7) until stdin ends' },
  },
};

/** One rank of `checkpoint` written to `out`: streamed from the plan, or dequantized in memory. */
async function writeRank(checkpoint: string, req: ParallelRequest, out: string, dequantize: boolean): Promise<void> {
  const plan = await planLoad(checkpoint, req);
  try {
    const scheme = schemeOf(plan.dims.quant);
    if (dequantize && scheme !== undefined) {
      // Dequantized output is built in memory: F32 weights are 4x (FP8) or 8x (MXFP4) their bytes.
      const tensors = dequantizeCanonical(await materialize(plan), scheme, req);
      await writeSafetensors(out, tensors, { [DEQUANTIZED_METADATA_KEY]: 'true' });
    } else {
      await writePlan(plan, out);
    }
  } finally {
    await plan.dir.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const p = startCommand(DEF, argv);
  if (p === 0) return 0;
  // Sizes and ranks are checked by the loader (checkRequest), which refuses a bad request with its reason (exit 1, spec §2).
  const req: ParallelRequest = {
    tpSize: int(p, 'tp-size', 1),
    tpRank: int(p, 'tp-rank', 0),
    epSize: int(p, 'ep-size', 1),
    epRank: int(p, 'ep-rank', 0),
    epPlacement: choice(p, 'ep-placement', EP_PLACEMENTS, 'linear'),
  };
  const checkpoint = one(p, 'checkpoint');
  const out = one(p, 'out');
  const dequantize = flag(p, 'dequantize');
  if (flag(p, 'worker')) {
    p.problems.check();
    await serveWorker({ name: 'moe-conformance load', version: REFERENCE_LOADER_VERSION, write: (dir, r, file) => writeRank(dir, r, file, dequantize) });
    return 0;
  }
  if (checkpoint === undefined) p.problems.add('--checkpoint is required');
  if (out === undefined) p.problems.add('--out is required');
  p.problems.check();
  try {
    await writeRank(checkpoint!, req, out!, dequantize);
    return 0;
  } catch (e) {
    return commandFailure('load', e);
  }
}
