/** Event name → listener arguments. */
export type EventMap = Record<string, unknown[]>;

/**
 * A minimal typed event emitter that runs in browsers and Node alike. Unlike Node's, an
 * `error` event without listeners is not thrown: failures also end the object's promises.
 */
export class Emitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<unknown>>();

  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  /** Removes a listener added with on() or once(). */
  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    const set = this.listeners.get(event);
    for (const entry of set ?? []) {
      if (entry === listener || (entry as { listener?: unknown }).listener === listener) set!.delete(entry);
    }
    return this;
  }

  once<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this {
    const wrapper = Object.assign(
      (...args: Events[E]): void => {
        this.off(event, wrapper);
        listener(...args);
      },
      { listener },
    );
    return this.on(event, wrapper);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) (listener as (...args: Events[E]) => void)(...args);
  }
}
