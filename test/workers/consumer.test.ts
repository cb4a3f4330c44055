// The click consumer's acknowledgements, message by message, inside workerd: what it acks, retries and
// dead-letters when the database cannot be reached, when a message is poison, when the dead-letter queue refuses it
// and when the configuration is wrong. (The plugin's test batch records retries but not their delays.) Storage,
// redelivery, the retry delays and the dead-letter queue end to end run against a real sqld and Miniflare's queue
// broker in test/e2e/queues-workerd.test.ts.
import { env } from 'cloudflare:test';
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import consumer, { retryDelaySeconds } from '../../src/runtimes/worker-consumer.ts';

// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE = 'http://127.0.0.1:9';

const click = (n: number) => ({
  v: 1,
  kind: 'click',
  id: `clk_${n.toString(16).padStart(32, '0')}`,
  at: Date.now(),
  workspaceId: 'wsp_1',
  linkId: 'lnk_1',
  country: null,
  userAgent: null,
  referrer: null,
  head: false,
});

function batchOf(bodies: unknown[], attempts = 1) {
  return createMessageBatch(
    'hop-clicks',
    bodies.map((body, i) => ({ id: `msg-${i}`, timestamp: new Date(), attempts, body })),
  );
}

async function deliver(bodies: unknown[], bindings: Record<string, unknown>, attempts = 1) {
  const batch = batchOf(bodies, attempts);
  const ctx = createExecutionContext();
  await consumer.queue(batch, bindings);
  return getQueueResult(batch, ctx);
}

describe('the click consumer, message by message', () => {
  // The CLICKS producer of wrangler.toml stands in for the dead-letter queue: a real Queue binding.
  const bindings = { HOP_DATABASE_URL: UNREACHABLE, HOP_LOG_LEVEL: 'silent', CLICKS_DEAD: env.CLICKS };

  it('retries the whole batch, poison included, when the database cannot be reached', async () => {
    for (const attempts of [1, 3]) {
      expect(await deliver([click(1), { not: 'a click' }, click(2)], bindings, attempts)).toMatchObject({
        outcome: 'ok',
        retryBatch: { retry: true },
        explicitAcks: [],
        retryMessages: [],
      });
    }
  });

  it('sends poison to the dead-letter queue and acknowledges it; a batch of only poison never needs the database', async () => {
    expect(await deliver([{ not: 'a click' }, 'text', { ...click(3), id: 'x' }], bindings)).toMatchObject({
      outcome: 'ok',
      retryBatch: { retry: false },
      explicitAcks: ['msg-0', 'msg-1', 'msg-2'],
      retryMessages: [],
    });
  });

  it('retries poison that the dead-letter queue refused, so Queues dead-letters it after its retries', async () => {
    // A stand-in for a dead-letter queue that fails (local queues accept anything); it refuses one message.
    const refusing = {
      send: (letter: { body: unknown }) =>
        letter.body === 'refused' ? Promise.reject(new Error('Queue send failed: 500')) : env.CLICKS.send(letter),
    };
    expect(await deliver(['refused', 'accepted'], { ...bindings, CLICKS_DEAD: refusing })).toMatchObject({
      retryBatch: { retry: false },
      explicitAcks: ['msg-1'],
      retryMessages: [{ msgId: 'msg-0' }],
    });
  });

  it('retries poison without a CLICKS_DEAD binding rather than dropping it', async () => {
    const { CLICKS_DEAD: _, ...withoutDeadLetters } = bindings;
    expect(await deliver(['poison'], withoutDeadLetters)).toMatchObject({
      explicitAcks: [],
      retryMessages: [{ msgId: 'msg-0' }],
    });
  });

  it('keeps every message while the configuration is wrong (fixed by a redeploy)', async () => {
    for (const broken of [{}, { HOP_DATABASE_URL: 'file:./hop.db' }, { HOP_DATABASE_URL: UNREACHABLE, HOP_CLICK_RETENTION_DAYS: '0' }]) {
      expect(await deliver([click(4), 'poison'], { ...broken, CLICKS_DEAD: env.CLICKS })).toMatchObject({
        retryBatch: { retry: true },
        explicitAcks: [],
      });
    }
  });

  it('backs off 2, 4, 8... seconds up to 5 minutes', () => {
    expect([1, 2, 3, 8, 9, 20, 100].map(retryDelaySeconds)).toEqual([2, 4, 8, 256, 300, 300, 300]);
  });
});

describe('the scheduled purge', () => {
  it('fails the cron run when the database cannot be reached or the configuration is wrong', async () => {
    const controller = { scheduledTime: Date.now(), cron: '17 * * * *' };
    await expect(consumer.scheduled(controller, { HOP_DATABASE_URL: UNREACHABLE, HOP_LOG_LEVEL: 'silent' })).rejects.toThrow();
    await expect(consumer.scheduled(controller, {})).rejects.toThrow(/misconfigured/);
  });
});
