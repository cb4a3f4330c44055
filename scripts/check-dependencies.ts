/**
 * Dependency hygiene for CI (`npm run check:deps`): the installed tree matches the lockfile (`npm ls`), production
 * dependencies have no known high or critical vulnerability (`npm audit`), and registry signatures verify (`npm audit
 * signatures`). A registry that does not offer the audit or signature endpoints (a mirror, an offline proxy) is said
 * so plainly, and that check is reported as not run rather than passed; everything else fails the run.
 */
import { spawnSync } from 'node:child_process';

export type Outcome = { status: 'ok' | 'failed' | 'unsupported'; detail: string };

const npm = (args: string[], timeoutMs: number) => {
  const run = spawnSync('npm', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { code: run.status, timedOut: run.error !== undefined, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
};

/** What `npm audit --json` says: vulnerabilities at or above high fail; an endpoint the registry lacks is unsupported. */
export function judgeAudit(stdout: string, code: number | null): Outcome {
  let report: { statusCode?: number; message?: string; metadata?: { vulnerabilities?: Record<string, number> } };
  try {
    report = JSON.parse(stdout);
  } catch {
    return { status: 'failed', detail: `npm audit gave no JSON (exit ${code})` };
  }
  if (report.statusCode && [404, 405, 501].includes(report.statusCode)) {
    return { status: 'unsupported', detail: `the registry has no audit endpoint (${report.message ?? report.statusCode})` };
  }
  const v = report.metadata?.vulnerabilities;
  if (!v) return { status: 'failed', detail: `npm audit failed: ${report.message ?? `exit ${code}`}` };
  const serious = (v.high ?? 0) + (v.critical ?? 0);
  const summary = Object.entries(v).map(([level, n]) => `${level} ${n}`).join(', ');
  return serious ? { status: 'failed', detail: `known vulnerabilities: ${summary}` } : { status: 'ok', detail: summary };
}

/** What `npm audit signatures` says: invalid or missing signatures fail; a registry that cannot be asked is unsupported. */
export function judgeSignatures(output: string, code: number | null, timedOut: boolean): Outcome {
  if (timedOut || /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|network|does not support/i.test(output)) {
    return { status: 'unsupported', detail: 'the registry\'s signing keys cannot be fetched from here' };
  }
  if (code === 0) return { status: 'ok', detail: output.trim().split('\n').find((l) => /verified/.test(l)) ?? 'verified' };
  return { status: 'failed', detail: output.trim().split('\n').slice(0, 5).join(' / ') };
}

function main() {
  const results: Array<[string, Outcome]> = [];
  const tree = npm(['ls', '--omit=dev', '--all'], 120_000);
  results.push(['installed tree matches package-lock.json', tree.code === 0 ? { status: 'ok', detail: 'npm ls' } : { status: 'failed', detail: tree.stderr.trim().split('\n').slice(0, 5).join(' / ') }]);
  const audit = npm(['audit', '--omit=dev', '--json'], 120_000);
  results.push(['known vulnerabilities (production dependencies)', judgeAudit(audit.stdout, audit.code)]);
  // Where the registry answers, this takes seconds; where its keys cannot be fetched npm retries for minutes.
  const signatures = npm(['audit', 'signatures'], 30_000);
  results.push(['registry signatures', judgeSignatures(signatures.stdout + signatures.stderr, signatures.code, signatures.timedOut)]);
  for (const [check, { status, detail }] of results) {
    console.log(`${status === 'ok' ? 'ok  ' : status === 'failed' ? 'FAIL' : 'n/a '} ${check}: ${detail}`);
  }
  if (results.some(([, r]) => r.status === 'unsupported')) {
    console.log(`note: checks marked n/a did not run against ${npm(['config', 'get', 'registry'], 10_000).stdout.trim()}; run them where the public registry answers them.`);
  }
  process.exitCode = results.some(([, r]) => r.status === 'failed') ? 1 : 0;
}

if (import.meta.main || process.argv[1]?.endsWith('check-dependencies.ts')) main();
