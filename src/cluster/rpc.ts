/**
 * Requests across a port: each gets an id, its reply settles it. When the other side goes
 * away, every pending request is rejected (nothing waits forever on a dead thread).
 */
export class PendingRequests {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  /** Sends with `send(id)` and resolves with the reply's result. */
  request<T>(send: (id: number) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      send(id);
    });
  }

  settle(reply: { readonly id: number; readonly result?: unknown; readonly error?: string }): void {
    const waiter = this.pending.get(reply.id);
    if (waiter === undefined) return;
    this.pending.delete(reply.id);
    if (reply.error !== undefined) waiter.reject(new Error(reply.error));
    else waiter.resolve(reply.result);
  }

  rejectAll(why: string): void {
    for (const waiter of this.pending.values()) waiter.reject(new Error(why));
    this.pending.clear();
  }
}

/** Runs `handle` and turns its outcome (value, promise or throw) into a reply. */
export function answer(id: number, handle: () => unknown, reply: (message: { type: 'reply'; id: number; result?: unknown; error?: string }) => void): void {
  let outcome: unknown;
  try {
    outcome = handle();
  } catch (error) {
    reply({ type: 'reply', id, error: String(error) });
    return;
  }
  Promise.resolve(outcome).then(
    (result) => reply({ type: 'reply', id, result }),
    (error: unknown) => reply({ type: 'reply', id, error: String(error) }),
  );
}
