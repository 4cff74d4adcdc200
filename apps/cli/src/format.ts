/** Plain-text tables for terminals. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((row) => row.map((value) => (value === null || value === undefined || value === '' ? '-' : String(value))));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

export function round(value: number | undefined | null, digits: number): string {
  return value === undefined || value === null ? '-' : value.toFixed(digits);
}
