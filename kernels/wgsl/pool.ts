/// <reference types="@webgpu/types" />
// The small buffers and the bind groups of one forward, kept for the next. A forward of the
// same shape asks for the same buffers (uniforms, tile tables, slot maps) in the same order, so
// once a shape has run, its forwards make no buffer and no bind group: on the GPU machine making
// and dropping them took milliseconds a forward and scattered the forwards' times (Dawn's
// Vulkan backend allocates and frees device memory and descriptor sets for them).
//
// What a forward used is kept until the next forward settles; the rest is destroyed then, so
// the pool never holds more than one forward's small buffers. Buffers over POOL_MAX_BYTES
// (weights uploaded for one forward) are never kept.

/** Largest buffer the pool keeps between forwards. */
export const POOL_MAX_BYTES = 1 << 20;

export class ForwardPool {
  /** Kept from the last forward, by size and usage, in the order it took them. */
  private free = new Map<string, GPUBuffer[]>();
  private taken: [string, GPUBuffer][] = [];
  private dropped: GPUBuffer[] = [];
  private groups = new Map<string, GPUBindGroup>();
  private groupsUsed = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  constructor(private readonly device: GPUDevice) {}

  /**
   * A buffer asked for as `size` bytes and `usage`: a kept one asked for alike, else `create()`.
   * A kept one asked for without contents is zeroed first, as a new buffer is; one with contents
   * is overwritten by the caller over the same `size` bytes, so its padding stays as made (zero).
   * Buffers with contents are read-only on the GPU (tables, uniforms).
   */
  take(size: number, usage: number, withContents: boolean, create: () => GPUBuffer): GPUBuffer {
    if (size > POOL_MAX_BYTES) {
      const b = create();
      this.dropped.push(b);
      return b;
    }
    const key = `${size}/${usage}`;
    const kept = this.free.get(key)?.shift();
    if (kept && !withContents) this.device.queue.writeBuffer(kept, 0, new Uint8Array(kept.size));
    const b = kept ?? create();
    this.taken.push([key, b]);
    return b;
  }

  /** The bind group of `pipeline` over these buffers (binding i: `entries[i]`), made once per set of buffers. */
  bindGroup(pipeline: GPUComputePipeline, entries: { buffer: GPUBuffer; offset?: number; size?: number }[]): GPUBindGroup {
    const key = [this.id(pipeline), ...entries.map((e) => `${this.id(e.buffer)}@${e.offset ?? 0}+${e.size ?? ''}`)].join(',');
    let group = this.groups.get(key) ?? this.groupsUsed.get(key);
    if (!group) {
      group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: entries.map((resource, binding) => ({ binding, resource })) });
    }
    this.groupsUsed.set(key, group);
    return group;
  }

  /** After a forward: what it took is kept for the next, everything else destroyed. */
  settle(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    for (const b of this.dropped) b.destroy();
    this.dropped = [];
    this.free = new Map();
    for (const [key, b] of this.taken) {
      const list = this.free.get(key);
      if (list) list.push(b);
      else this.free.set(key, [b]);
    }
    this.taken = [];
    this.groups = this.groupsUsed;
    this.groupsUsed = new Map();
  }

  /** Destroys every kept buffer (settling twice: what is taken is kept by the first). */
  dispose(): void {
    this.settle();
    this.settle();
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }
}
