/**
 * Bounded readers of a child's output: a line splitter that refuses lines
 * over a maximum length, and a tail buffer that keeps only the last bytes.
 * Neither grows with what the child writes.
 */

export class LineTooLongError extends Error {
  constructor(readonly maxLineBytes: number) {
    super(`a stdout line is longer than ${maxLineBytes} bytes`);
    this.name = 'LineTooLongError';
  }
}

/** Splits a byte stream into UTF-8 lines of at most `maxLineBytes` bytes each. */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** Returns the complete lines in `chunk`; throws LineTooLongError when a line exceeds the limit. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(10, start); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      if (this.pendingBytes + piece.length > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
      this.pending.push(piece);
      lines.push(Buffer.concat(this.pending).toString('utf8').replace(/\r$/, ''));
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
    }
    const rest = chunk.subarray(start);
    if (this.pendingBytes + rest.length > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
    if (rest.length > 0) {
      // Copy, because the stream may reuse the chunk's memory.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /** Returns the text after the last newline (output that ended mid-line), or null. */
  finish(): string | null {
    if (this.pendingBytes === 0) return null;
    const rest = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return rest;
  }
}

/** Keeps the last `maxBytes` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (chunk.length >= this.maxBytes) {
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.maxBytes))];
      this.dropped = this.dropped || chunk.length > this.maxBytes || this.bytes > 0;
      this.bytes = this.maxBytes;
      return;
    }
    this.chunks.push(Buffer.from(chunk));
    this.bytes += chunk.length;
    while (this.bytes - this.chunks[0].length >= this.maxBytes) {
      this.bytes -= this.chunks[0].length;
      this.chunks.shift();
      this.dropped = true;
    }
  }

  /** Returns the kept bytes as text; a leading partial line is dropped when older output was discarded. */
  text(): string {
    let buffer = Buffer.concat(this.chunks);
    if (buffer.length > this.maxBytes) {
      buffer = buffer.subarray(buffer.length - this.maxBytes);
      this.dropped = true;
    }
    const text = buffer.toString('utf8');
    if (!this.dropped) return text;
    const newline = text.indexOf('\n');
    return newline === -1 ? text : text.slice(newline + 1);
  }
}
