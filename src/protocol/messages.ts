/** The heartbeat: a TEXT message with this content, sent both ways. */
export const HEARTBEAT = 'h';

/** True for TEXT messages that report an error (the client side of the protocol). */
export function isErrorMessage(text: string): boolean {
  return text.startsWith('ERROR:');
}
