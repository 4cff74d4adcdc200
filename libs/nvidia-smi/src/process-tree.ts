import { readdirSync, readFileSync } from 'node:fs';

/**
 * Returns `rootPid` and the PIDs of all its live descendants. On Linux it
 * reads `/proc/<pid>/task/<tid>/children`, and scans `/proc/<pid>/stat`
 * for parent PIDs where the kernel lacks that file (CONFIG_PROC_CHILDREN
 * off). Elsewhere it returns `[rootPid]`.
 */
export function listProcessTree(rootPid: number): number[] {
  if (process.platform !== 'linux') return [rootPid];
  const viaChildren = listTreeFromChildrenFiles(rootPid);
  return viaChildren ?? listTreeFromStatScan(rootPid);
}

/** Returns null when the kernel does not provide the children files. */
function listTreeFromChildrenFiles(rootPid: number): number[] | null {
  const tree: number[] = [];
  const pending = [rootPid];
  const seen = new Set<number>();

  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    tree.push(pid);

    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      // The process exited while the tree was read.
      continue;
    }
    for (const task of tasks) {
      let children: string;
      try {
        children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && pid === rootPid && task === String(pid)) {
          // The root's own task exists but has no children file: the kernel lacks it.
          return existsProcess(pid) ? null : tree;
        }
        continue;
      }
      for (const child of children.split(' ')) {
        const childPid = Number(child);
        if (Number.isInteger(childPid) && childPid > 0) pending.push(childPid);
      }
    }
  }
  return tree;
}

function listTreeFromStatScan(rootPid: number): number[] {
  const childrenByParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name is in parentheses and may contain spaces; the parent PID is the second field after it.
    const parentPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const siblings = childrenByParent.get(parentPid) ?? [];
    siblings.push(Number(entry));
    childrenByParent.set(parentPid, siblings);
  }

  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (tree.includes(pid)) continue;
    tree.push(pid);
    pending.push(...(childrenByParent.get(pid) ?? []));
  }
  return tree;
}

function existsProcess(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`, 'utf8');
    return true;
  } catch {
    return false;
  }
}
