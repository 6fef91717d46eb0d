import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_REASON_CHARS, parseAnswer, parseHandshake, parseRequest, WorkerAnswerInvalid, WorkerHandshakeError, WorkerLineTooLong, WorkerRequestInvalid } from './worker-messages.js';

const tooLong = (c: { expected: string; found: string }) => new WorkerLineTooLong('line too long', c);

describe('LineSplitter', () => {
  it('joins lines split across chunks and drops a CR before the newline', () => {
    const s = new LineSplitter(16, tooLong);
    expect(s.push(Buffer.from('{"a"'))).toEqual([]);
    expect(s.rest).toBe(4);
    expect(s.push(Buffer.from(':1}\r\n{"b":2}\nx'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(s.rest).toBe(1);
    expect(s.push(Buffer.from('\n'))).toEqual(['x']);
  });

  it('refuses a line past the bound before holding it whole, with or without its newline', () => {
    const s = new LineSplitter(8, tooLong);
    expect(() => s.push(Buffer.from('123456789'))).toThrow(WorkerLineTooLong);
    expect(s.rest).toBe(0);
    const t = new LineSplitter(8, tooLong);
    t.push(Buffer.from('12345'));
    expect(() => t.push(Buffer.from('6789\n'))).toThrow(/expected ≤ 8 bytes per line, found 9 bytes/);
    expect(new LineSplitter(8, tooLong).push(Buffer.from('12345678\n'))).toEqual(['12345678']);
  });

  it('copies an unfinished line instead of holding the chunks it came in (a line sent a byte at a time held ~250 bytes per byte)', () => {
    const s = new LineSplitter(1 << 20, tooLong);
    const chunks = Array.from({ length: 1000 }, () => Buffer.from('a'));
    for (const c of chunks) expect(s.push(c)).toEqual([]);
    // The stream may reuse its buffers: what was pushed must not change with them.
    for (const c of chunks) c[0] = 0x7a;
    const tail = Buffer.from('bc');
    s.push(tail);
    tail.fill(0x7a);
    expect(s.push(Buffer.from('\n'))).toEqual(['a'.repeat(1000) + 'bc']);
    expect(s.rest).toBe(0);
    s.push(Buffer.from('x\r'));
    expect(s.end()).toEqual(['x']);
  });
});

describe('parseHandshake', () => {
  const ok = { protocol: 'moe-conformance-worker', version: 1, loader: { name: 'x', version: '1' } };
  it('reads name, version and capabilities', () => {
    expect(parseHandshake(JSON.stringify({ ...ok, capabilities: { maxTp: 2 } }))).toEqual({ ...ok, capabilities: { maxTp: 2 } });
    expect(parseHandshake(JSON.stringify(ok))).toEqual(ok);
  });
  it('refuses anything else with a typed error', () => {
    for (const [line, message] of [
      ['not json', /handshake is not JSON/],
      ['[1]', /handshake is not a JSON object/],
      [JSON.stringify({ ...ok, protocol: 'lsp' }), /names another protocol/],
      [JSON.stringify({ ...ok, version: '1' }), /version this harness does not know/],
      [JSON.stringify({ ...ok, loader: { name: 'x' } }), /lacks the loader's name and version/],
      [JSON.stringify({ ...ok, loader: undefined }), /lacks the loader's name and version/],
      [JSON.stringify({ ...ok, capabilities: { maxTp: -1 } }), /worker handshake: capabilities.maxTp must be an integer/],
    ] as const) {
      expect(() => parseHandshake(line), line).toThrow(WorkerHandshakeError);
      expect(() => parseHandshake(line), line).toThrow(message);
    }
  });
});

describe('parseAnswer', () => {
  it('reads ok and refusals of the request asked', () => {
    expect(parseAnswer('{"id":3,"status":"ok"}', 3)).toEqual({ id: 3, status: 'ok' });
    expect(parseAnswer('{"id":3,"status":"refused","reason":"I % T"}', 3)).toEqual({ id: 3, status: 'refused', reason: 'I % T' });
    // A reason up to the line's megabyte is kept to its first 64 KiB (a command loader's stderr tail is as long), the rest counted.
    const long = `no FP8\n${'x'.repeat(1 << 20)}`;
    const refused = parseAnswer(JSON.stringify({ id: 3, status: 'refused', reason: long }), 3);
    expect(refused).toEqual({ id: 3, status: 'refused', reason: `${long.slice(0, MAX_REASON_CHARS)}… (${long.length} characters)` });
    const edge = 'y'.repeat(MAX_REASON_CHARS);
    expect(parseAnswer(JSON.stringify({ id: 3, status: 'refused', reason: edge }), 3)).toEqual({ id: 3, status: 'refused', reason: edge });
  });
  it('refuses another id, a missing reason, an unknown status, and long garbage shortened', () => {
    expect(() => parseAnswer('{"id":4,"status":"ok"}', 3)).toThrow(/answered another request \(expected "id": 3, found "id": 4\)/);
    expect(() => parseAnswer('{"status":"ok"}', 3)).toThrow(/found "id": none/);
    expect(() => parseAnswer('{"id":3,"status":"refused","reason":" "}', 3)).toThrow(/refused without a reason/);
    expect(() => parseAnswer('{"id":3,"status":"done"}', 3)).toThrow(/no valid status/);
    expect(() => parseAnswer('x'.repeat(500), 3)).toThrow(/… \(500 characters\)/);
    expect(() => parseAnswer('"ok"', 3)).toThrow(WorkerAnswerInvalid);
  });
});

describe('parseRequest', () => {
  const rank = { out: '/o', tpSize: 2, tpRank: 1, epSize: 1, epRank: 0, epPlacement: 'linear' };
  it('reads a request of several ranks', () => {
    expect(parseRequest(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [rank, { ...rank, tpRank: 0 }] }))).toEqual({ id: 1, checkpoint: '/c', ranks: [rank, { ...rank, tpRank: 0 }] });
  });
  it('refuses what is not a request', () => {
    expect(() => parseRequest('{')).toThrow(WorkerRequestInvalid);
    expect(() => parseRequest(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [] }))).toThrow(/not a request/);
    expect(() => parseRequest(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [{ ...rank, epPlacement: 'x' }] }))).toThrow(/rank 0 is not a rank job/);
    expect(() => parseRequest(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [{ ...rank, tpSize: '2' }] }))).toThrow(/rank 0 is not a rank job/);
    expect(() => parseRequest(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [null] }))).toThrow(/rank 0 is not a rank job/);
  });
});
