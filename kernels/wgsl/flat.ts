// The entry point of the shaders that run one thread per element (or per token), dispatched by
// the backend's `dispatch()`: its workgroups come as rows of at most the device's workgroups
// per dimension (x, 65,535 or more) and as many rows as needed (y), so a thread's flat index
// is gid.x + gid.y · (workgroups in x) · (size).

/** `@compute fn main(...)` of a flat shader of `size` threads per workgroup, opened with its flat index bound to `index`. */
export function flatEntry(size: number, index: string): string {
  return `@compute @workgroup_size(${size})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ${index} = gid.x + gid.y * nwg.x * ${size}u;`;
}
