// The Redis Streams queue's wire format: what a dead letter holds, and how redrive tells given-up from refused.
import { describe, expect, it } from 'vitest';
import { deadLetterEntry, givenUpReason, readDeadLetter } from '../../src/platform/queue/redis-streams/wire.ts';

/** A dead-letter entry's fields as XRANGE returns them: `[field, value, ...]`. */
const asList = (fields: Record<string, string | number>) => Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);

describe('dead letters', () => {
  it('carry their kind as a field, beside the reason for a person', () => {
    const entry = deadLetterEntry({ id: '1-0', index: 2, raw: '{"v":1}', kind: 'given-up', reason: givenUpReason(5), deliveries: 6 }, 'hop:clicks');
    expect(entry).toEqual({ m: '{"v":1}', id: '1-0', index: 2, kind: 'given-up', reason: 'not stored after 5 deliveries', deliveries: 6, stream: 'hop:clicks' });
    expect(readDeadLetter(asList(entry))).toEqual({ raw: '{"v":1}', kind: 'given-up' });
  });

  it('are told apart by their kind, not by the text of their reason', () => {
    const refused = asList({ m: '{"v":1}', id: '1-0', kind: 'refused', reason: 'not stored after 5 deliveries', deliveries: 6 });
    expect(readDeadLetter(refused).kind).toBe('refused');
    const givenUp = asList({ m: '{"v":1}', id: '1-0', kind: 'given-up', reason: 'the database was down', deliveries: 6 });
    expect(readDeadLetter(givenUp).kind).toBe('given-up');
  });

  it('written before they had a kind are read by their reason', () => {
    expect(readDeadLetter(asList({ m: '{"v":1}', id: '1-0', reason: 'not stored after 5 deliveries', deliveries: 6 })).kind).toBe('given-up');
    expect(readDeadLetter(asList({ m: 'not json {', id: '2-0', reason: 'not JSON', deliveries: 1 }))).toEqual({ raw: 'not json {', kind: 'refused' });
    expect(readDeadLetter([])).toEqual({ raw: '', kind: 'refused' });
  });
});
