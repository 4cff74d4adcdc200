/** Small dense least squares, enough for the cost model's few-feature fits. */

/**
 * Solves min ||X w - y||^2 + ridge ||w||^2 by the normal equations with
 * Gaussian elimination; returns null when the system is singular.
 */
export function leastSquares(rows: number[][], targets: number[], ridge = 0): number[] | null {
  const n = rows[0]?.length ?? 0;
  if (n === 0 || rows.length !== targets.length) return null;
  const a: number[][] = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  for (const [r, row] of rows.entries()) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) a[i]![j]! += row[i]! * row[j]!;
      a[i]![n]! += row[i]! * targets[r]!;
    }
  }
  for (let i = 0; i < n; i++) a[i]![i]! += ridge;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    const scale = Math.max(...a.map((row) => Math.abs(row[col]!)));
    if (Math.abs(a[pivot]![col]!) <= 1e-12 * Math.max(scale, 1e-300)) return null;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const factor = a[r]![col]! / a[col]![col]!;
      for (let c = col; c <= n; c++) a[r]![c]! -= factor * a[col]![c]!;
    }
  }
  const solution = a.map((row, i) => row[n]! / row[i]!);
  return solution.every(Number.isFinite) ? solution : null;
}

export function dot(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
