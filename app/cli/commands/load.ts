// moe-conformance load: the reference loader as a protocol command (spec §2). Writes one
// rank's canonical tensors to --out, streamed piece by piece; refusals go to stderr.
import { commandFailure, intOption, parse, UsageError } from '../args.js';
import { materialize, planLoad, writePlan } from '../../../harness/loader/load.js';
import { dequantizeCanonical } from '../../../harness/quant/dequantize.js';
import { DEQUANTIZED_METADATA_KEY, schemeOf } from '../../../harness/quant/scheme.js';
import { writeSafetensors } from '../../../harness/safetensors/write.js';
import { EP_PLACEMENTS } from '../../../harness/canonical/cut.js';
import type { EpPlacement, ParallelRequest } from '../../../harness/tensor.js';
import { serveWorker } from '../../../harness/protocol/serve.js';

/** What the reference loader says in a worker handshake; changes when its output would. */
const REFERENCE_LOADER_VERSION = '1';

const USAGE = `usage: moe-conformance load --checkpoint DIR --out FILE [--tp-size T] [--tp-rank r] [--ep-size P] [--ep-rank q] [--ep-placement linear|round_robin] [--dequantize]
       moe-conformance load --worker [--dequantize]

Writes the canonical tensors of TP rank r of T and EP rank q of P (defaults 1, 0, 1, 0, linear)
to FILE as one safetensors file; exits 1 with the reason on stderr when the checkpoint or the
request cannot be loaded correctly. For a quantized checkpoint (spec §4) the expert weights
keep their quantized bytes with their scales; --dequantize writes them as F32 instead and
declares it in the file's __metadata__ (${DEQUANTIZED_METADATA_KEY}: "true").
With --worker it serves the worker protocol (spec §5) on stdin/stdout instead: one process,
many requests.`;

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
  const { values } = parse(argv, {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    'tp-size': { type: 'string' },
    'tp-rank': { type: 'string' },
    'ep-size': { type: 'string' },
    'ep-rank': { type: 'string' },
    'ep-placement': { type: 'string' },
    dequantize: { type: 'boolean' },
    worker: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.worker) {
    const dequantize = values.dequantize ?? false;
    await serveWorker({ name: 'moe-conformance load', version: REFERENCE_LOADER_VERSION, write: (dir, req, out) => writeRank(dir, req, out, dequantize) });
    return 0;
  }
  if (values.checkpoint === undefined || values.out === undefined) throw new UsageError('--checkpoint and --out are required');
  const placement = values['ep-placement'] ?? 'linear';
  if (!(EP_PLACEMENTS as readonly string[]).includes(placement)) throw new UsageError(`--ep-placement takes ${EP_PLACEMENTS.join(' or ')}, got ${JSON.stringify(placement)}`);
  const req: ParallelRequest = {
    tpSize: intOption(values['tp-size'], 'tp-size', 1),
    tpRank: intOption(values['tp-rank'], 'tp-rank', 0),
    epSize: intOption(values['ep-size'], 'ep-size', 1),
    epRank: intOption(values['ep-rank'], 'ep-rank', 0),
    epPlacement: placement as EpPlacement,
  };
  try {
    await writeRank(values.checkpoint, req, values.out, values.dequantize ?? false);
    return 0;
  } catch (e) {
    return commandFailure('load', e);
  }
}
