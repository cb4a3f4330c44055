// @ts-check
/**
 * Which Node runs hop, in plain JavaScript so that any Node can read it: hop is TypeScript run by Node itself, which
 * strips types without a flag from 22.18 on. Used by the launcher (bin/hop.js) before anything TypeScript loads.
 */

/** The oldest Node that runs hop, as [major, minor]; package.json's engines field says the same. */
export const minimumNode = /** @type {const} */ ([22, 18]);

/**
 * Whether Node `version` is at least {@link minimumNode}.
 * @param {string} version as in `process.versions.node`, e.g. '20.20.2'
 */
export function runsHop(version) {
  const [major = 0, minor = 0] = String(version).split('.').map(Number);
  return major > minimumNode[0] || (major === minimumNode[0] && minor >= minimumNode[1]);
}

/**
 * Why Node `version` cannot run hop and how to get one that can, as one paragraph for the terminal.
 * @param {string} version as in `process.versions.node`
 */
export function tooOldMessage(version) {
  return [
    `hop: this is Node ${version}; hop needs Node ${minimumNode.join('.')} or newer, the first versions that run`,
    'TypeScript without flags (24 recommended, see .node-version). Get Node 24 with nvm (nvm install 24), with fnm',
    '(fnm use, which reads .node-version), from https://nodejs.org/, or without a version manager through npm:',
    'npm install --prefix ~/.cache/hop-node node@24, then put ~/.cache/hop-node/node_modules/.bin first on PATH.',
  ].join('\n');
}
