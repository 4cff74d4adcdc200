import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Folder of the twins shipped with the repository. */
export const BUNDLED_TWINS_DIR = fileURLToPath(new URL('../twins/', import.meta.url));

export function bundledTwinPath(name: 'a100-40gb' | 'rtx4090' | 't4' | string): string {
  return join(BUNDLED_TWINS_DIR, `${name}.json`);
}
