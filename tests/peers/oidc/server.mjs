// A real OAuth 2.0 authorization server for sidekey's tests: oidc-provider with
// the client-credentials grant, introspection (RFC 7662), revocation (RFC 7009)
// and RFC 8693 token exchange registered through oidc-provider's custom grant API.
//
// Usage: node server.mjs CONFIG.json
// CONFIG: { port, ttl, scopes, clients, workload: { issuer, audience, jwks }, tls?: { cert, key } }
// With `tls` (PEM texts) it serves HTTPS and its issuer is https://localhost:PORT.
// Prints "listening PORT" on stdout once it accepts connections.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const server = cfg.tls ? createTlsServer({ cert: cfg.tls.cert, key: cfg.tls.key }) : createServer();
server.listen(cfg.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = cfg.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: cfg.clients,
    scopes: cfg.scopes,
    cookies: { keys: ['sidekey-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    ttl: { ClientCredentials: cfg.ttl },
    // Every tests' client authenticates with the method in its metadata.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // What a token exchange learnt from the subject token, kept in the issued
    // token so introspection reports it.
    extraTokenClaims: (ctx) => ctx?.tokenExchange,
  });
  provider.proxy = false;

  // RFC 8693: exchange a workload identity JWT (what a Kubernetes projected
  // service-account token is) for an access token of this server.
  const workloadKeys = jose.createLocalJWKSet(cfg.workload?.jwks ?? { keys: [] });
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { params, client } = ctx.oidc;
    if (!params.subject_token) {
      throw new errors.InvalidRequest('missing subject_token');
    }
    if (params.subject_token_type !== JWT_TYPE) {
      throw new errors.InvalidRequest('unsupported subject_token_type');
    }
    const requested = params.requested_token_type ?? ACCESS_TOKEN_TYPE;
    if (requested !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('unsupported requested_token_type');
    }
    let subject;
    try {
      ({ payload: subject } = await jose.jwtVerify(params.subject_token, workloadKeys, {
        issuer: cfg.workload.issuer,
        audience: cfg.workload.audience,
      }));
    } catch (e) {
      throw new errors.InvalidGrant(`subject_token rejected (${e.code ?? 'invalid'})`);
    }
    const allowed = new Set((client.scope ?? '').split(' '));
    const scopes = (params.scope ?? '').split(' ').filter(Boolean);
    if (scopes.some((s) => !allowed.has(s))) {
      throw new errors.InvalidScope('requested scope is not allowed', params.scope);
    }
    const token = new provider.ClientCredentials({
      client,
      scope: scopes.join(' ') || undefined,
    });
    ctx.tokenExchange = { sub: subject.sub, resource: params.resource };
    if (params.audience) token.setAudience(params.audience);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope']);

  server.on('request', provider.callback());
  process.stdout.write(`listening ${port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
