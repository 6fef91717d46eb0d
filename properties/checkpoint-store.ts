// Where a case's checkpoints are written. By default each case writes its own into its
// own folder; a shared store writes each distinct checkpoint once and hands the same
// folder to every later case that needs it, for when several loaders are checked on the
// same cases (the mutant test: twelve loaders, one list of cases).
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';

export interface CheckpointStore {
  /** The folder holding checkpoint `key`; `write` fills an empty folder the first time the key is asked for. */
  checkpoint<T>(key: string, write: (dir: string) => Promise<T>): Promise<{ dir: string; value: T }>;
}

/** A fresh folder under `root` for every request: nothing is shared. */
export function privateStore(root: string): CheckpointStore {
  return {
    async checkpoint(_key, write) {
      const dir = await mkdtemp(join(root, 'checkpoint-'));
      return { dir, value: await write(dir) };
    },
  };
}

/** One folder per key under `root`, written once; the caller removes `root` when done. */
export function sharedStore(root: string): CheckpointStore {
  const made = new Map<string, Promise<{ dir: string; value: unknown }>>();
  return {
    checkpoint<T>(key: string, write: (dir: string) => Promise<T>) {
      let hit = made.get(key);
      if (!hit) {
        hit = (async () => {
          await mkdir(root, { recursive: true });
          const dir = await mkdtemp(join(root, 'checkpoint-'));
          return { dir, value: await write(dir) };
        })();
        made.set(key, hit);
      }
      return hit as Promise<{ dir: string; value: T }>;
    },
  };
}
