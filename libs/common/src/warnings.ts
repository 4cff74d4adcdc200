/**
 * grpc-js 1.14 passes the target host to tls.connect as the TLS server
 * name even when it is an IP address (build/src/channel-credentials.js),
 * and Node then prints deprecation DEP0123 on every connection. Nothing a
 * user passes can avoid it, and the extra stderr line breaks JSON-lines
 * logs, so the clients drop that one warning. Every other warning is
 * printed as before.
 */
export function dropIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    // Node passes the code either in an options object or as the third argument.
    const first = rest[0];
    const code = typeof first === 'object' && first !== null ? (first as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
