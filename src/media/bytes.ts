// Byte helpers shared by the parsers, the caches, the pacer and the test page. Plain Uint8Array
// code: the test page bundles it.

/**
 * The parts joined into one array. When at most one part holds bytes, that part itself (or an
 * empty array) is returned, not a copy: callers must not assume the result is a new buffer.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const filled = parts.filter((part) => part.byteLength > 0);
  if (filled.length <= 1) return filled[0] ?? new Uint8Array(0);
  const joined = new Uint8Array(totalBytes(filled));
  let offset = 0;
  for (const part of filled) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined;
}

/**
 * Exactly these bytes, in a buffer of their own: never a view (a Node Buffer's own slice() is
 * one), so it may be kept after the source is reused, or moved to another thread alone.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.prototype.slice.call(bytes);
}

/** The parts' byte lengths added up. */
export function totalBytes(parts: readonly Uint8Array[]): number {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  return total;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
