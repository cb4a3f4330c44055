import { describe, expect, it } from 'vitest';
import { CircuitOpenError, createCircuitBreaker, DeadlineError, withDeadline } from '../../src/platform/resilience.ts';

describe('withDeadline', () => {
  it('passes a timely answer through and refuses a late one', async () => {
    await expect(withDeadline(Promise.resolve(7), 50, 'fast')).resolves.toBe(7);
    const late = new Promise((resolve) => setTimeout(() => resolve('late'), 200));
    await expect(withDeadline(late, 20, 'cache get')).rejects.toThrow(new DeadlineError('cache get: no answer within 20 ms'));
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
