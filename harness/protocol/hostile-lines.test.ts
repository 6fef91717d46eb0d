// A worker's JSON lines (spec §7) are untrusted input: within the 1 MiB line limit, a line
// nested 100,000 deep parsed, then overflowed the stack of JSON.stringify when the error
// message quoted it (an untyped RangeError), and a key given twice was resolved silently.
// Lines are now read by the strict parser (nesting at most 127, no key twice): typed errors.
import { describe, expect, it } from 'vitest';
import { CapabilitiesError, parseCapabilitiesJson } from '../conformance/capabilities.js';
import { parseAnswer, parseHandshake, parseRequest, WorkerAnswerInvalid, WorkerHandshakeError, WorkerRequestInvalid } from './worker-messages.js';

const deep = '['.repeat(100_000) + ']'.repeat(100_000);

describe('hostile worker lines', () => {
  it('a handshake whose loader is nested 100,000 deep: WorkerHandshakeError', () => {
    expect(() => parseHandshake(`{"protocol":"moe-conformance-worker","version":1,"loader":${deep}}`)).toThrow(WorkerHandshakeError);
  });

  it('an answer with a key twice: WorkerAnswerInvalid', () => {
    expect(() => parseAnswer('{"id":1,"status":"refused","status":"ok"}', 1)).toThrow(WorkerAnswerInvalid);
    expect(parseAnswer('{"id":1,"status":"ok"}', 1)).toEqual({ id: 1, status: 'ok' });
  });

  it('a request whose rank is nested 100,000 deep, or with a key twice: WorkerRequestInvalid', () => {
    expect(() => parseRequest(`{"id":1,"checkpoint":"d","ranks":[${deep}]}`)).toThrow(WorkerRequestInvalid);
    expect(() => parseRequest('{"id":1,"id":2,"checkpoint":"d","ranks":[]}')).toThrow(WorkerRequestInvalid);
  });

  it('a capabilities file nested 100,000 deep, or with a key twice: CapabilitiesError', () => {
    expect(() => parseCapabilitiesJson(`{"modelTypes":${deep}}`, 'c.json')).toThrow(CapabilitiesError);
    expect(() => parseCapabilitiesJson('{"maxTp":2,"maxTp":4}', 'c.json')).toThrow(CapabilitiesError);
  });
});
