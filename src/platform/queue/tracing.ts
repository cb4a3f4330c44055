/**
 * Traces across the click queue: the producer's send is a span under the redirect's, and each message carries the
 * redirect's context (`trace`, a W3C traceparent); the consumer's batch is a span of its own, linked to every
 * redirect whose click it stores (a batch has many parents, so links rather than one parent).
 */
import { formatTraceparent, parseTraceparent, SpanKind, type SpanContext, type Tracer } from '../tracing.ts';
import type { QueueProducer } from './queue.ts';

const attributes = (system: string, operation: string) => ({
  'messaging.system': system,
  'messaging.operation.type': operation,
  'messaging.destination.name': 'clicks',
});

/** The producer with a `send clicks` span and the current context added to each message sent from within a span. */
export function tracedProducer<T extends object>(producer: QueueProducer<T>, tracer: Tracer, system: string): QueueProducer<T> {
  return {
    send(message) {
      const parent = tracer.current();
      if (!parent) return producer.send(message);
      const span = tracer.start('send clicks', { kind: SpanKind.producer, parent, attributes: attributes(system, 'send') });
      const fail = (err: unknown) => {
        span.fail(err instanceof Error ? err.message : 'error');
        span.end();
        throw err;
      };
      try {
        const pending = producer.send({ ...message, trace: formatTraceparent(parent) });
        if (!pending) return span.end();
        // A send that finishes after the response (Workers: in waitUntil) exports its own span once done.
        return pending.then(() => (span.end(), tracer.flush()), fail);
      } catch (err) {
        return fail(err);
      }
    },
  };
}

/** The contexts the messages of a batch carry (those without one, or with a malformed one, add nothing). */
export function messageLinks(messages: readonly unknown[]): SpanContext[] {
  const links: SpanContext[] = [];
  for (const m of messages) {
    const context = parseTraceparent((m as { trace?: unknown } | null)?.trace);
    if (context) links.push(context);
  }
  return links;
}

/** Runs each batch of `store.ingest` in a `process clicks` consumer span linked to the messages' redirects. */
export function tracedIngest<S extends { ingest(messages: readonly unknown[]): Promise<{ stored: number }> }>(
  store: S,
  tracer: Tracer | undefined,
  system: string,
): S {
  if (!tracer) return store;
  return {
    ...store,
    ingest(messages: readonly unknown[]) {
      const span = tracer.start('process clicks', {
        kind: SpanKind.consumer,
        links: messageLinks(messages),
        attributes: { ...attributes(system, 'process'), 'messaging.batch.message_count': messages.length },
      });
      const run = () => store.ingest(messages);
      const work = tracer.scopes ? tracer.scopes.run({ span: span.context }, run) : run();
      return work.then(
        (result) => {
          span.set('hop.clicks.stored', result.stored);
          span.end();
          return result;
        },
        (err: unknown) => {
          span.fail(err instanceof Error ? err.message : 'error');
          span.end();
          throw err;
        },
      );
    },
  };
}
