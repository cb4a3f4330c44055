import { describe, expect, it } from 'vitest';
import { causeChain, findCause } from '../../src/errors.ts';
import {
  backoffDelay,
  CircuitOpenError,
  createBackoff,
  createCircuitBreaker,
  DeadlineError,
  withDeadline,
} from '../../src/platform/resilience.ts';

describe('withDeadline', () => {
  it('passes a timely answer through and refuses a late one', async () => {
    await expect(withDeadline(Promise.resolve(7), 50, 'fast')).resolves.toBe(7);
    const late = new Promise((resolve) => setTimeout(() => resolve('late'), 200));
    await expect(withDeadline(late, 20, 'cache get')).rejects.toThrow(new DeadlineError('cache get: no answer within 20 ms'));
  });

  it('answers what the caller makes of the deadline: a value, or its own error', async () => {
    const never = new Promise<boolean>(() => {});
    await expect(withDeadline(never, 10, () => false)).resolves.toBe(false);
    await expect(
      withDeadline(never, 10, () => {
        throw new Error('database did not answer within 10 ms');
      }),
    ).rejects.toThrow('database did not answer within 10 ms');
    await expect(withDeadline(Promise.reject(new Error('refused')), 50, () => true)).rejects.toThrow('refused');
  });
});

describe('backoff', () => {
  it('waits the first wait, doubles it on each failure, and stops at the longest', () => {
    const waits = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, { firstMs: 100, maxMs: 1000 }));
    expect(waits).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(0, { firstMs: 2, maxMs: 300 })).toBe(2);
    expect(backoffDelay(5000, { firstMs: 2, maxMs: 300 })).toBe(300);
  });

  it('counts consecutive failures; a success starts over', () => {
    const backoff = createBackoff({ firstMs: 500, maxMs: 30_000 });
    expect(backoff.ms).toBe(0);
    expect([backoff.fail(), backoff.fail(), backoff.fail()]).toEqual([500, 1000, 2000]);
    expect(backoff.ms).toBe(2000);
    backoff.reset();
    expect(backoff.ms).toBe(0);
    expect(backoff.fail()).toBe(500);
  });
});

describe('causeChain', () => {
  it('walks an error and what it wraps, and stops on a cycle', () => {
    const root = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const wrapped = new Error('Failed query', { cause: new Error('libsql', { cause: root }) });
    expect([...causeChain(wrapped)].map((e) => (e as Error).message)).toEqual(['Failed query', 'libsql', 'database is locked']);
    expect(findCause(wrapped, (e) => (e as { code?: string }).code === 'SQLITE_BUSY')).toBe(root);
    expect(findCause(wrapped, (e) => e === 'nothing')).toBeUndefined();
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    expect([...causeChain(loop)]).toHaveLength(16);
  });
});

describe('createCircuitBreaker', () => {
  it('opens after consecutive failures, refuses without calling, probes once after the cooldown', async () => {
    let clock = 0;
    const states: string[] = [];
    const breaker = createCircuitBreaker({
      failureThreshold: 3,
      cooldownMs: 1000,
      now: () => clock,
      onStateChange: (s) => states.push(s),
    });
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('down'));
    };
    for (let i = 0; i < 3; i++) await expect(breaker.run(failing)).rejects.toThrow('down');
    expect(breaker.state).toBe('open');
    await expect(breaker.run(failing)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(3);

    clock = 1000;
    let release!: (v: string) => void;
    const probe = breaker.run(() => new Promise<string>((resolve) => (release = resolve)));
    expect(breaker.state).toBe('half-open');
    // Only the probe goes through while it is in flight.
    await expect(breaker.run(() => Promise.resolve('other'))).rejects.toBeInstanceOf(CircuitOpenError);
    release('ok');
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('a failed probe opens the circuit for another cooldown; a success resets the failure count', async () => {
    let clock = 0;
    const breaker = createCircuitBreaker({ failureThreshold: 2, cooldownMs: 100, now: () => clock });
    await expect(breaker.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await breaker.run(() => Promise.resolve(1));
    await expect(breaker.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(breaker.state).toBe('closed');
    await expect(breaker.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(breaker.state).toBe('open');
    clock = 100;
    await expect(breaker.run(() => Promise.reject(new Error('still down')))).rejects.toThrow('still down');
    expect(breaker.state).toBe('open');
    clock = 150;
    await expect(breaker.run(() => Promise.resolve(1))).rejects.toBeInstanceOf(CircuitOpenError);
    clock = 200;
    await expect(breaker.run(() => Promise.resolve(2))).resolves.toBe(2);
    expect(breaker.state).toBe('closed');
  });
});
