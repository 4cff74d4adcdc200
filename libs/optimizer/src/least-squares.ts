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

/**
 * Solves least squares with every coefficient >= 0, for fits whose terms
 * are costs that cannot be negative. It solves each subset of the columns
 * and keeps the best solution that has no negative coefficient, with 0 for
 * the columns left out. That takes 2^n solves, so it suits a handful of
 * columns only. Returns null when no subset solves.
 */
export function nonNegativeLeastSquares(rows: number[][], targets: number[], ridge = 0): number[] | null {
  const n = rows[0]?.length ?? 0;
  if (n === 0 || n > MAX_NON_NEGATIVE_COLUMNS) return null;
  const unconstrained = leastSquares(rows, targets, ridge);
  if (unconstrained !== null && unconstrained.every((c) => c >= 0)) return unconstrained;
  let best: { coefficients: number[]; residual: number } | null = null;
  for (let mask = 1; mask < 1 << n; mask++) {
    const columns = [...Array(n).keys()].filter((i) => (mask & (1 << i)) !== 0);
    const solution = leastSquares(rows.map((row) => columns.map((i) => row[i]!)), targets, ridge);
    if (solution === null || solution.some((c) => c < 0)) continue;
    const coefficients = new Array<number>(n).fill(0);
    for (const [k, i] of columns.entries()) coefficients[i] = solution[k]!;
    let residual = 0;
    for (const [r, row] of rows.entries()) residual += (dot(row, coefficients) - targets[r]!) ** 2;
    if (best === null || residual < best.residual) best = { coefficients, residual };
  }
  return best?.coefficients ?? null;
}

/** Largest column count nonNegativeLeastSquares accepts, because it solves 2^n subsets. */
const MAX_NON_NEGATIVE_COLUMNS = 8;
