/**
 * A real OpenID Connect provider for tests: the npm `oidc-provider` in this process on 127.0.0.1, issuing JWT access
 * tokens with the client-credentials grant for one resource (the audience), with a `hop_workspace` claim per client.
 * It can rotate its signing key (a new key signs, the old one stays published), counts the requests for its
 * documents, and hands its private key to tests that forge tokens (expired, wrong issuer...).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** Every hop scope a test client may be given. */
const HOP_SCOPES = 'links:read links:write analytics:read workspace:admin';

export interface TestClient {
  /** client_id; also the token's `sub`. */
  id: string;
  secret: string;
  /** The scopes the client may request (a subset of HOP_SCOPES, plus others hop ignores). */
  scope: string;
}

export interface OidcProvider {
  /** http://127.0.0.1:PORT: the issuer, as tokens carry it. */
  issuer: string;
  audience: string;
  /** The current signing key (private JWK with kid and alg). */
  signingKey: JWK;
  /** Requests for the JWKS and the discovery document since the start. */
  fetches: { jwks: number; discovery: number };
  /** Sets which workspace a client's tokens name (the `hop_workspace` claim). */
  setWorkspace(clientId: string, workspaceId: string): void;
  /** A client-credentials access token for `clientId`, for `resource` (default: the audience). */
  token(clientId: string, options?: { scope?: string; resource?: string }): Promise<string>;
  /** A new ES256 key signs from now on; the previous keys stay published. */
  rotate(): Promise<void>;
  stop(): Promise<void>;
}

async function rsaKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `rsa-${crypto.randomUUID()}`, alg: 'RS256', use: 'sig' };
}

async function ecKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `ec-${crypto.randomUUID()}`, alg: 'ES256', use: 'sig' };
}

export async function startOidcProvider(options: { audience: string; clients: TestClient[] }): Promise<OidcProvider> {
  const { audience, clients } = options;
  const workspaces = new Map<string, string>();
  let keys = [await rsaKey()];
  let signingAlg: 'RS256' | 'ES256' = 'RS256';
  const fetches = { jwks: 0, discovery: 0 };

  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  const server = createServer((req, res) => {
    if (req.url === '/jwks') fetches.jwks++;
    if (req.url === '/.well-known/openid-configuration') fetches.discovery++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const build = () => {
    const alg = signingAlg;
    const provider = new Provider(issuer, {
      clients: clients.map((c) => ({
        client_id: c.id,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: c.scope,
        token_endpoint_auth_method: 'client_secret_post',
      })),
      jwks: { keys },
      scopes: ['openid', 'offline_access', ...HOP_SCOPES.split(' '), 'other:api'],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resource) => ({
            audience: resource,
            scope: `${HOP_SCOPES} other:api`,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg } },
          }),
        },
      },
      ttl: { ClientCredentials: 300 },
      extraTokenClaims: (_ctx, token) => {
        const clientId = (token as { clientId?: string }).clientId;
        const workspace = clientId && workspaces.get(clientId);
        return workspace ? { hop_workspace: workspace } : undefined;
      },
    });
    // The test process is not behind a proxy, and the provider must not log its "development" warnings per request.
    provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));
    handler = provider.callback();
  };
  build();

  return {
    issuer,
    audience,
    get signingKey() {
      return keys[0]!;
    },
    fetches,
    setWorkspace: (clientId, workspaceId) => void workspaces.set(clientId, workspaceId),
    async token(clientId, opts = {}) {
      const client = clients.find((c) => c.id === clientId);
      if (!client) throw new Error(`no client ${clientId}`);
      const body = new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: client.id,
        client_secret: client.secret,
        resource: opts.resource ?? audience,
        scope: opts.scope ?? client.scope,
      });
      const res = await fetch(`${issuer}/token`, { method: 'POST', body });
      const json = (await res.json()) as { access_token?: string };
      if (res.status !== 200 || !json.access_token) throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(json)}`);
      return json.access_token;
    },
    async rotate() {
      keys = [await ecKey(), ...keys];
      signingAlg = 'ES256';
      build();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
