/**
 * The producer of a Cloudflare Queue binding (the redirect Worker's CLICKS): one message per click, sent as JSON
 * rather than the default structured clone, since an event is plain JSON by its schema and JSON messages can be
 * read by any consumer, HTTP pull and the dashboard's message browser included. A refused send is logged, never
 * thrown: the redirect has been answered.
 */
import type { Logger } from '../logger.ts';
import type { QueueProducer } from './queue.ts';

/** The producer side of a Cloudflare Queue binding, as much of it as hop uses. */
export interface QueueBinding {
  send(body: unknown, options?: { contentType?: 'json' }): Promise<unknown>;
}

export function createCloudflareQueueProducer<T>(queue: QueueBinding, logger: Logger): QueueProducer<T> {
  return {
    send: (message) =>
      queue.send(message, { contentType: 'json' }).then(
        () => undefined,
        (err: unknown) => logger.log('error', 'click not queued', { error: err instanceof Error ? err.message : String(err) }),
      ),
  };
}
