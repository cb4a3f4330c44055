/**
 * Business rules of tenants: creating workspaces with their first admin key, issuing, listing, revoking and
 * authenticating API keys (and, when an OpenID Connect provider is configured, its access tokens), and the
 * short-link domains a workspace owns.
 */
import type { Config } from '../../config.ts';
import type { ApiKeyRow, DomainRow, WorkspaceRow } from '../../db/schema.ts';
import { AppError, invalidFields } from '../../errors.ts';
import { isUniqueViolation } from '../../platform/db/client.ts';
import { newApiKey, newId, sha256Hex, API_KEY_PATTERN } from '../../platform/crypto.ts';
import type { TokenVerifier } from '../../platform/oidc.ts';
import { scopes as knownScopes, type Principal, type Scope, type ServiceContext } from '../context.ts';
import type { WorkspacesRepository } from './workspaces.repository.ts';
import type {
  ApiKey,
  CreateApiKeyInput,
  CreateDomainInput,
  CreatedApiKey,
  CreateWorkspaceInput,
  Domain,
  Workspace,
} from './workspaces.schemas.ts';

const KEY_PREFIX_LENGTH = 12;
/** A compact JWS: three base64url parts (the last empty for `alg: none`, refused later); bounded before any parsing. */
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/;
const MAX_TOKEN_LENGTH = 16 * 1024;
const isScope = (s: string): s is Scope => (knownScopes as readonly string[]).includes(s);


const toWorkspace = (w: WorkspaceRow): Workspace => ({ id: w.id, name: w.name, createdAt: w.createdAt.toISOString() });
const toApiKey = (k: ApiKeyRow | Omit<ApiKeyRow, 'revokedAt'>): ApiKey => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes as Scope[],
  createdAt: k.createdAt.toISOString(),
});
const toDomain = (d: DomainRow): Domain => ({ id: d.id, hostname: d.hostname, createdAt: d.createdAt.toISOString() });

async function mintKey(workspaceId: string, name: string, scopes: readonly Scope[], now: Date) {
  const key = newApiKey();
  const row = {
    id: newId('key'),
    workspaceId,
    name,
    prefix: key.slice(0, KEY_PREFIX_LENGTH),
    hash: await sha256Hex(key),
    scopes: [...scopes],
    createdAt: now,
  };
  return { row, created: { ...toApiKey(row), key } satisfies CreatedApiKey };
}

async function newWorkspace(name: string, now: Date) {
  const workspace: WorkspaceRow = { id: newId('ws'), name, createdAt: now };
  const { row, created } = await mintKey(workspace.id, 'admin', ['workspace:admin'], now);
  return { workspace, keyRow: row, result: { ...toWorkspace(workspace), apiKey: created } };
}

/** What the link cache must hear about when a hostname starts or stops being a registered domain. */
export interface HostInvalidation {
  host(hostname: string): void;
}

export function createWorkspacesService(
  repo: WorkspacesRepository,
  config: Config,
  invalidation: HostInvalidation,
  /** HOP_OIDC_*: the provider's access tokens are accepted beside API keys. */
  tokens?: TokenVerifier,
) {
  return {
    /** Creates a workspace and its first key with the `workspace:admin` scope. */
    async createWorkspace(input: CreateWorkspaceInput, now: Date) {
      const { workspace, keyRow, result } = await newWorkspace(input.name, now);
      await repo.insertWorkspaceWithKey(workspace, keyRow);
      return result;
    },

    /** On an empty database, creates the `default` workspace; otherwise does nothing and returns null. */
    async bootstrapDefaultWorkspace(now: Date) {
      const { workspace, keyRow, result } = await newWorkspace('default', now);
      return (await repo.insertFirstWorkspace(workspace, keyRow)) ? result : null;
    },

    async getWorkspace(ctx: ServiceContext): Promise<Workspace> {
      const row = await repo.getWorkspace(ctx.workspaceId);
      if (!row) throw new AppError('not_found', 'No such workspace.');
      return toWorkspace(row);
    },

    async createKey(ctx: ServiceContext, input: CreateApiKeyInput): Promise<CreatedApiKey> {
      const { row, created } = await mintKey(ctx.workspaceId, input.name, input.scopes, ctx.now());
      await repo.insertKey(row);
      return created;
    },

    async listKeys(ctx: ServiceContext): Promise<ApiKey[]> {
      return (await repo.listActiveKeys(ctx.workspaceId)).map(toApiKey);
    },

    /** Revokes a key; the workspace's last `workspace:admin` key stays, or nobody could manage it any more. */
    async revokeKey(ctx: ServiceContext, id: string): Promise<void> {
      const active = await repo.listActiveKeys(ctx.workspaceId);
      const key = active.find((k) => k.id === id);
      if (!key) throw new AppError('not_found', 'No such API key.');
      const isAdmin = (k: ApiKeyRow) => k.scopes.includes('workspace:admin');
      if (isAdmin(key) && active.filter(isAdmin).length === 1) {
        throw new AppError('conflict', "This is the workspace's last admin key; create another admin key first.");
      }
      if (!(await repo.revokeKey(ctx.workspaceId, id, ctx.now()))) {
        // Refused between the read and the write: revoked by someone else meanwhile, or the last admin key by now.
        const still = (await repo.listActiveKeys(ctx.workspaceId)).some((k) => k.id === id);
        if (still) throw new AppError('conflict', "This is the workspace's last admin key; create another admin key first.");
        throw new AppError('not_found', 'No such API key.');
      }
    },

    /**
     * The principal behind a bearer token, or null when the token is malformed, unknown or revoked. An API key
     * (`hop_...`) is looked up; a JWT is verified when a provider is configured, and its refusal thrown with the
     * reason (AppError `unauthorized`, or `unavailable` when the provider cannot be reached).
     */
    async authenticate(token: string): Promise<Principal | null> {
      if (API_KEY_PATTERN.test(token)) {
        const row = await repo.findActiveKeyByHash(await sha256Hex(token));
        if (!row) return null;
        return { workspaceId: row.workspaceId, keyId: row.id, scopes: row.scopes as Scope[], domains: JSON.parse(row.domains) as string[] };
      }
      if (!tokens || token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return null;
      const claims = await tokens.verify(token);
      // A token for a workspace that does not exist (any more) is refused like an unknown key.
      if (!(await repo.getWorkspace(claims.workspace))) {
        throw new AppError('unauthorized', "The token's workspace does not exist.");
      }
      // Scopes hop does not know (`openid`, another API's) are ignored: a provider issues one token for many APIs.
      return { workspaceId: claims.workspace, keyId: `oidc:${claims.subject}`, scopes: claims.scopes.filter(isScope) };
    },

    async createDomain(ctx: ServiceContext, input: CreateDomainInput): Promise<Domain> {
      if (input.hostname === config.defaultDomain) {
        throw invalidFields([{ field: 'hostname', message: 'is the default domain, which every workspace has' }]);
      }
      const targeting = await repo.countLinksTargeting(ctx.workspaceId, input.hostname);
      if (targeting > 0) {
        throw new AppError(
          'conflict',
          `${targeting} link(s) of this workspace redirect to ${input.hostname}; serving it would make them loop.`,
        );
      }
      const row: DomainRow = { id: newId('dom'), workspaceId: ctx.workspaceId, hostname: input.hostname, createdAt: ctx.now() };
      try {
        await repo.insertDomain(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AppError('conflict', `The hostname ${input.hostname} is already registered.`);
        throw err;
      }
      invalidation.host(row.hostname);
      return toDomain(row);
    },

    async listDomains(ctx: ServiceContext): Promise<Domain[]> {
      return (await repo.listDomains(ctx.workspaceId)).map(toDomain);
    },

    async deleteDomain(ctx: ServiceContext, id: string): Promise<void> {
      const domain = await repo.getDomain(ctx.workspaceId, id);
      if (!domain) throw new AppError('not_found', 'No such domain.');
      const inUse = () => repo.countLinksOnDomain(ctx.workspaceId, domain.hostname);
      const stillUsed = (n: number) => new AppError('conflict', `${n} link(s) still use ${domain.hostname}; delete or move them first.`);
      const used = await inUse();
      if (used > 0) throw stillUsed(used);
      if (!(await repo.deleteDomain(ctx.workspaceId, id))) {
        // A link arrived on it since the count (the delete checks again), or another request deleted it.
        const now = await inUse();
        if (now > 0) throw stillUsed(now);
        throw new AppError('not_found', 'No such domain.');
      }
      invalidation.host(domain.hostname);
    },

    /**
     * The hosts that carry this workspace's links: the default domain and the domains it registered. A link may
     * live on one of them, and may not redirect to one of them (it would loop). Other workspaces' domains are not
     * in the set: without proof of ownership, registering `github.com` must not stop anyone linking to it.
     */
    async shortLinkHosts(ctx: ServiceContext): Promise<Set<string>> {
      const own = ctx.domains ?? (await repo.listDomains(ctx.workspaceId)).map((d) => d.hostname);
      return new Set([config.defaultDomain, ...own]);
    },

  };
}

export type WorkspacesService = ReturnType<typeof createWorkspacesService>;
