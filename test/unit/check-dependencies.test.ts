// The dependency check's verdicts (scripts/check-dependencies.ts): a registry without the audit or signature
// endpoints is reported as not run, never as passed; vulnerabilities at or above high and bad signatures fail.
import { describe, expect, it } from 'vitest';
import { judgeAudit, judgeSignatures } from '../../scripts/check-dependencies.ts';

describe('judgeAudit', () => {
  it('passes a tree with low and moderate findings only, and fails one with a high or critical one', () => {
    const report = (v: Record<string, number>) => JSON.stringify({ metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...v } } });
    expect(judgeAudit(report({ low: 2, moderate: 1 }), 0).status).toBe('ok');
    expect(judgeAudit(report({ high: 1 }), 1)).toMatchObject({ status: 'failed', detail: expect.stringMatching(/high 1/) });
    expect(judgeAudit(report({ critical: 3 }), 1).status).toBe('failed');
  });

  it('reports a registry without the audit endpoint as unsupported, and anything unreadable as failed', () => {
    expect(judgeAudit(JSON.stringify({ statusCode: 405, message: '405 Method Not Allowed' }), 1).status).toBe('unsupported');
    expect(judgeAudit(JSON.stringify({ statusCode: 500, message: 'boom' }), 1).status).toBe('failed');
    expect(judgeAudit('not json', 1).status).toBe('failed');
  });
});

describe('judgeSignatures', () => {
  it('passes verified signatures, fails invalid ones, and reports an unreachable registry as unsupported', () => {
    expect(judgeSignatures('audited 120 packages\n120 packages have verified registry signatures\n', 0, false).status).toBe('ok');
    expect(judgeSignatures('1 package has an invalid registry signature:\nevil@1.0.0', 1, false).status).toBe('failed');
    expect(judgeSignatures('npm error network request failed', 1, false).status).toBe('unsupported');
    expect(judgeSignatures('', null, true).status).toBe('unsupported');
  });
});
