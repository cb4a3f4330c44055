// The launcher's version check (bin/node-version.js): which Node runs hop, and what an older one is told.
import { describe, expect, it } from 'vitest';
import { minimumNode, runsHop, tooOldMessage } from '../../bin/node-version.js';

describe('the Node version check', () => {
  it.each(['22.18.0', '22.18.1', '22.20.0', '23.0.0', '24.0.0', '24.21.0', '25.1.0', '100.0.0'])('lets Node %s run hop', (v) => {
    expect(runsHop(v)).toBe(true);
  });

  it.each(['22.17.9', '22.6.0', '22.0.0', '21.7.3', '20.20.2', '18.20.8', '0.10.48', '', 'garbage'])('stops Node %j', (v) => {
    expect(runsHop(v)).toBe(false);
  });

  it('agrees with package.json engines', async () => {
    const { default: pkg } = await import('../../package.json', { with: { type: 'json' } });
    expect(pkg.engines.node).toBe(`>=${minimumNode.join('.')}`);
  });

  it('tells an old Node what hop needs and how to get it, in one paragraph', () => {
    const message = tooOldMessage('20.20.2');
    expect(message).toContain('this is Node 20.20.2');
    expect(message).toContain('Node 22.18 or newer');
    expect(message).toContain('24 recommended, see .node-version');
    for (const way of ['nvm install 24', 'fnm use', 'https://nodejs.org/', 'npm install --prefix ~/.cache/hop-node node@24']) {
      expect(message).toContain(way);
    }
    expect(message).not.toMatch(/\n\s*\n/);
  });
});
