// A fake worker (spec §5) whose behaviour FAKE_WORKER picks, written without the code under
// test. Every mode handshakes first unless it is about the handshake. A valid answer writes,
// for each rank, a safetensors file holding the request's JSON (U8) and the TP rank (I32).
//   ok | refuse | crash (dies by SIGSEGV mid-request) | hang (and a hanging grandchild) |
//   garbage | huge-line | wrong-id | early-exit (exits 3 before the handshake) |
//   unknown-version | crash-first (crashes on its first request if FAKE_MARKER does not exist yet)
//   ignore-eof (keeps running after stdin ends) | no-output (answers ok, writes no file)
// FAKE_REQUEST_LOG: a file to which every request's ranks are appended, one request a line.
// FAKE_START_LOG: a file to which every start of a worker appends a line.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { writeRankFile } from '../fake-loaders/args.mjs';

const mode = process.env.FAKE_WORKER ?? 'ok';
const send = (v) => process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v)) + '\n');

function writeRank(job, request) {
  writeRankFile(job.out, 'request', Buffer.from(JSON.stringify(request)), job.tpRank);
}

process.stderr.write(`fake worker ${mode} starting\n`);
if (process.env.FAKE_PID_FILE) writeFileSync(process.env.FAKE_PID_FILE, String(process.pid));
if (process.env.FAKE_START_LOG) appendFileSync(process.env.FAKE_START_LOG, `${process.pid}\n`);
if (mode === 'early-exit') {
  process.stderr.write('cannot import torch\n');
  process.exit(3);
}
if (mode === 'ignore-eof') process.on('SIGTERM', () => {});
const capabilities = process.env.FAKE_CAPABILITIES ? JSON.parse(process.env.FAKE_CAPABILITIES) : undefined;
send({ protocol: 'moe-conformance-worker', version: mode === 'unknown-version' ? 99 : 1, loader: { name: 'fake', version: '0.0.1' }, ...(capabilities && { capabilities }) });

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const r = JSON.parse(line);
  process.stderr.write(`request ${r.id}: ${r.ranks.length} ranks of ${r.checkpoint}\n`);
  if (process.env.FAKE_REQUEST_LOG) appendFileSync(process.env.FAKE_REQUEST_LOG, r.ranks.map((j) => `tp${j.tpRank}/${j.tpSize} ep${j.epRank}/${j.epSize}`).join(' + ') + '\n');
  switch (mode) {
    case 'crash':
      process.kill(process.pid, 'SIGSEGV');
      return;
    case 'crash-first':
      if (!existsSync(process.env.FAKE_MARKER)) {
        writeFileSync(process.env.FAKE_MARKER, 'crashed once');
        process.kill(process.pid, 'SIGSEGV');
        return;
      }
      break;
    case 'hang': {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      if (process.env.GRANDCHILD_PID_FILE) writeFileSync(process.env.GRANDCHILD_PID_FILE, String(child.pid));
      return;
    }
    case 'garbage':
      send('this is not JSON');
      return;
    case 'huge-line':
      process.stdout.write('x'.repeat(3 * 1024 * 1024));
      return;
    case 'wrong-id':
      send({ id: r.id + 1000, status: 'ok' });
      return;
    case 'no-output':
      send({ id: r.id, status: 'ok' });
      return;
    case 'refuse':
      send({ id: r.id, status: 'refused', reason: `I % T != 0 for TP ${r.ranks[0].tpSize}` });
      return;
  }
  for (const job of r.ranks) writeRank(job, r);
  send({ id: r.id, status: 'ok' });
});
lines.on('close', () => {
  if (mode !== 'ignore-eof') process.exit(0);
});
