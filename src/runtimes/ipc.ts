/**
 * Requests and answers between the supervisor (cluster.ts) and one of its workers (cluster-worker.ts) over the
 * cluster IPC channel: numbered, each answered once, and failed at once when the other side goes away. Both ends
 * ask and both answer (a worker asks for rate-limit verdicts; the supervisor asks a worker to drop cache entries).
 */

/** What travels on the channel; `hop` tells these messages from the cluster module's own. */
export type Wire =
  | { hop: 'q'; id: number; body: unknown }
  | { hop: 'a'; id: number; ok: unknown }
  | { hop: 'a'; id: number; error: string };

export interface Channel {
  request<T>(body: unknown): Promise<T>;
  /** Hands a message from the other side to the channel; false when it is not one of the channel's. */
  receive(message: unknown): boolean;
  /** Fails every pending request (the other side exited). */
  close(reason: string): void;
}

export function createChannel(send: (message: Wire) => void, handle: (body: unknown) => unknown): Channel {
  let nextId = 1;
  let closed: string | undefined;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  const trySend = (message: Wire) => {
    try {
      send(message);
      return true;
    } catch {
      // The channel closed under us (ERR_IPC_CHANNEL_CLOSED): the other side is gone.
      return false;
    }
  };

  return {
    request<T>(body: unknown) {
      if (closed) return Promise.reject(new Error(closed));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        if (!trySend({ hop: 'q', id, body })) {
          pending.delete(id);
          reject(new Error('the IPC channel is closed'));
        }
      });
    },
    receive(message) {
      const m = message as Partial<Wire> | null;
      if (!m || typeof m !== 'object' || (m.hop !== 'q' && m.hop !== 'a') || typeof m.id !== 'number') return false;
      const wire = m as Wire;
      if (wire.hop === 'a') {
        const call = pending.get(wire.id);
        if (call) {
          pending.delete(wire.id);
          if ('error' in wire) call.reject(new Error(wire.error));
          else call.resolve(wire.ok);
        }
        return true;
      }
      const answer = (result: { ok: unknown } | { error: string }) => void trySend({ hop: 'a', id: wire.id, ...result });
      try {
        const result = handle(wire.body);
        if (result instanceof Promise) {
          result.then(
            (ok) => answer({ ok }),
            (err: unknown) => answer({ error: err instanceof Error ? err.message : String(err) }),
          );
        } else answer({ ok: result });
      } catch (err) {
        answer({ error: err instanceof Error ? err.message : String(err) });
      }
      return true;
    },
    close(reason) {
      closed = reason;
      for (const [id, call] of pending) {
        pending.delete(id);
        call.reject(new Error(reason));
      }
    },
  };
}
