// The pieces of src/runtimes/listen.ts and src/http/middleware/transport-security.ts that decide on their own:
// refused connections logged a line per interval, not per socket; Bun's one timeout; when a request came over TLS.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { arrivedOverTls } from '../../src/http/middleware/transport-security.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { bunServeOptions, refusalLog } from '../../src/runtimes/listen.ts';
import { loadServerConfig } from '../../src/config.ts';

afterEach(() => void vi.useRealTimers());

describe('refusalLog', () => {
  it('logs the first refusal at once and sums up the rest of a flood once per interval', () => {
    vi.useFakeTimers();
    const lines: Record<string, unknown>[] = [];
    const refuse = refusalLog(createLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }), 10_000);
    refuse('per address', '192.0.2.1');
    expect(lines).toMatchObject([{ level: 'warn', msg: 'connections refused', refused: { 'per address': 1 }, addresses: ['192.0.2.1'] }]);
    for (let i = 0; i < 5000; i++) refuse(i % 2 ? 'per address' : 'in total', `198.51.100.${i % 200}`);
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ refused: { 'per address': 2500, 'in total': 2500 } });
    expect(lines[1]!.addresses).toHaveLength(5);
    // A quiet interval logs nothing, and the next refusal is logged at once again.
    vi.advanceTimersByTime(30_000);
    expect(lines).toHaveLength(2);
    refuse('in total', undefined);
    expect(lines).toHaveLength(3);
  });
});

describe('bunServeOptions', () => {
  it('gives Bun the shorter of the head and idle timeouts in whole seconds, at most 255', () => {
    expect(bunServeOptions(loadServerConfig({}).listen)).toEqual({ idleTimeout: 10 });
    expect(bunServeOptions(loadServerConfig({ HOP_HEADERS_TIMEOUT_MS: '1500' }).listen)).toEqual({ idleTimeout: 2 });
    const long = loadServerConfig({ HOP_HEADERS_TIMEOUT_MS: '600000', HOP_REQUEST_TIMEOUT_MS: '600000', HOP_IDLE_TIMEOUT_MS: '900000' });
    expect(bunServeOptions(long.listen)).toEqual({ idleTimeout: 255 });
  });
});

describe('arrivedOverTls', () => {
  const req = (url: string, proto?: string) => new Request(url, { headers: proto ? { 'x-forwarded-proto': proto } : {} });

  it('believes the URL scheme the runtime gives, and X-Forwarded-Proto only from a configured proxy', () => {
    expect(arrivedOverTls(req('https://hop.example/v1'), false)).toBe(true);
    expect(arrivedOverTls(req('http://hop.example/v1'), false)).toBe(false);
    expect(arrivedOverTls(req('http://hop.example/v1', 'https'), false)).toBe(false);
    expect(arrivedOverTls(req('http://hop.example/v1', 'https'), true)).toBe(true);
    expect(arrivedOverTls(req('http://hop.example/v1', 'HTTPS'), true)).toBe(true);
    expect(arrivedOverTls(req('http://hop.example/v1', 'http'), true)).toBe(false);
    expect(arrivedOverTls(req('http://hop.example/v1'), true)).toBe(false);
    // The right-most entry is the trusted proxy's own; what a client sent before it is not.
    expect(arrivedOverTls(req('http://hop.example/v1', 'https, http'), true)).toBe(false);
    expect(arrivedOverTls(req('http://hop.example/v1', 'http,https'), true)).toBe(true);
  });
});
