import { describe, expect, it } from 'vitest';
import { createChannel, type Channel, type Wire } from '../../src/runtimes/ipc.ts';

/** Two channels wired to each other as the cluster IPC would (asynchronously, through a structured clone). */
function pair(handleA: (body: unknown) => unknown, handleB: (body: unknown) => unknown) {
  const ends: { a?: Channel; b?: Channel } = {};
  const deliver = (to: 'a' | 'b') => (m: Wire) => void setImmediate(() => ends[to]!.receive(structuredClone(m)));
  ends.a = createChannel(deliver('b'), handleA);
  ends.b = createChannel(deliver('a'), handleB);
  return { a: ends.a, b: ends.b };
}

describe('the supervisor–worker channel', () => {
  it('answers each request once, in any order, synchronous and asynchronous handlers alike', async () => {
    const { a } = pair(
      () => 'unused',
      (body) => {
        const { n } = body as { n: number };
        return n % 2 ? n * 10 : new Promise((resolve) => setTimeout(() => resolve(n * 100), 5));
      },
    );
    expect(await Promise.all([1, 2, 3, 4].map((n) => a.request({ n })))).toEqual([10, 200, 30, 400]);
  });

  it('turns a handler failure into a rejection with its message on the other side', async () => {
    const { b } = pair(
      () => {
        throw new Error('no click writer');
      },
      () => undefined,
    );
    await expect(b.request({})).rejects.toThrow('no click writer');
    const { b: c } = pair(() => Promise.reject(new Error('thread died')), () => undefined);
    await expect(c.request({})).rejects.toThrow('thread died');
  });

  it('fails pending and later requests once closed, and when the send itself throws', async () => {
    const { a } = pair(() => undefined, () => new Promise(() => {}));
    const pending = a.request({});
    a.close('worker 2 exited');
    await expect(pending).rejects.toThrow('worker 2 exited');
    await expect(a.request({})).rejects.toThrow('worker 2 exited');
    const broken = createChannel(() => {
      throw new Error('ERR_IPC_CHANNEL_CLOSED');
    }, () => undefined);
    await expect(broken.request({})).rejects.toThrow('the IPC channel is closed');
  });

  it('leaves messages that are not its own to others (the cluster module has its own)', () => {
    const channel = createChannel(() => {}, () => undefined);
    expect(channel.receive({ cmd: 'NODE_CLUSTER', act: 'online' })).toBe(false);
    expect(channel.receive(null)).toBe(false);
    expect(channel.receive({ hop: 'a', id: 99, ok: 1 })).toBe(true);
  });
});
