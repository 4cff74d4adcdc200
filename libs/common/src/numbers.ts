/**
 * Parses a number typed on a command line in plain decimal notation, such
 * as "12", "-3" or "0.05". Returns NaN for anything else. Number() alone
 * turns "" and " " into 0 and reads "0x10" as 16, so a flag given an empty
 * or mistyped value would silently run with another one.
 */
export function parseDecimal(text: string | undefined): number {
  if (text === undefined || !/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(text)) return Number.NaN;
  return Number(text);
}
