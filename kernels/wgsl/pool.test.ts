// The per-forward pool (pool.ts) on a stand-in device: what a forward took comes back to the
// next in the same order, zeroed where asked without contents; what the last forward did not
// take is destroyed; large buffers are never kept; bind groups are made once per set of buffers.
import { describe, expect, it } from 'vitest';
import { ForwardPool, POOL_MAX_BYTES } from './pool.js';

function standIn() {
  const writes: { buffer: unknown; bytes: number }[] = [];
  let groups = 0;
  const device = {
    queue: { writeBuffer: (buffer: unknown, _offset: number, data: Uint8Array) => writes.push({ buffer, bytes: data.byteLength }) },
    createBindGroup: () => ({ group: ++groups }),
  } as unknown as GPUDevice;
  let made = 0;
  const make = (size: number) => () => {
    const b = { size: Math.ceil(size / 16) * 16, id: ++made, destroyed: false, destroy() { this.destroyed = true; } };
    return b as unknown as GPUBuffer & { id: number; destroyed: boolean };
  };
  return { device, writes, made: () => made, groups: () => groups, make };
}

const pipeline = { getBindGroupLayout: () => ({}) } as unknown as GPUComputePipeline;

describe('ForwardPool', () => {
  it('gives the next forward the buffers the last one took, in the same order, zeroing those asked for without contents', () => {
    const d = standIn();
    const pool = new ForwardPool(d.device);
    const first = [pool.take(20, 1, true, d.make(20)), pool.take(20, 1, true, d.make(20)), pool.take(64, 2, false, d.make(64))];
    pool.settle();
    expect(d.writes).toHaveLength(0);
    const second = [pool.take(20, 1, true, d.make(20)), pool.take(20, 1, true, d.make(20)), pool.take(64, 2, false, d.make(64))];
    expect(second).toEqual(first);
    expect(second[0]).toBe(first[0]);
    expect(d.made()).toBe(3);
    // Only the one asked for without contents was zeroed, over its whole size.
    expect(d.writes).toEqual([{ buffer: first[2], bytes: 64 }]);
    // Asked alike but with another size or usage: a new buffer.
    expect(pool.take(24, 1, true, d.make(24))).not.toBe(first[0]);
    expect(pool.take(20, 2, true, d.make(20))).not.toBe(first[0]);
  });

  it('destroys what the last forward did not take, never keeps large buffers, and destroys everything on dispose', () => {
    const d = standIn();
    const pool = new ForwardPool(d.device);
    const small = pool.take(16, 1, true, d.make(16)) as GPUBuffer & { destroyed: boolean };
    const large = pool.take(POOL_MAX_BYTES + 4, 1, false, d.make(POOL_MAX_BYTES + 4)) as GPUBuffer & { destroyed: boolean };
    pool.settle();
    expect(large.destroyed).toBe(true);
    expect(small.destroyed).toBe(false);
    pool.settle();
    expect(small.destroyed).toBe(true);
    const again = pool.take(16, 1, true, d.make(16)) as GPUBuffer & { destroyed: boolean };
    expect(again).not.toBe(small);
    pool.dispose();
    expect(again.destroyed).toBe(true);
  });

  it('makes one bind group per pipeline and set of buffers (offsets and sizes included), kept while forwards use it', () => {
    const d = standIn();
    const pool = new ForwardPool(d.device);
    const a = pool.take(16, 1, true, d.make(16));
    const b = pool.take(32, 1, true, d.make(32));
    const g1 = pool.bindGroup(pipeline, [{ buffer: a }, { buffer: b }]);
    expect(pool.bindGroup(pipeline, [{ buffer: a }, { buffer: b }])).toBe(g1);
    const g2 = pool.bindGroup(pipeline, [{ buffer: a }, { buffer: b, offset: 16, size: 16 }]);
    expect(g2).not.toBe(g1);
    expect(pool.bindGroup(pipeline, [{ buffer: b }, { buffer: a }])).not.toBe(g1);
    expect(d.groups()).toBe(3);
    pool.settle();
    // The next forward binds the same buffers: no new group.
    expect(pool.bindGroup(pipeline, [{ buffer: pool.take(16, 1, true, d.make(16)) }, { buffer: pool.take(32, 1, true, d.make(32)) }])).toBe(g1);
    pool.settle();
    pool.settle();
    // A forward that did not use it drops it.
    expect(pool.bindGroup(pipeline, [{ buffer: a }, { buffer: b }])).not.toBe(g1);
    expect(d.groups()).toBe(4);
  });
});
