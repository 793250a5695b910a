// An RFC 7662 introspecting IdP for tests/it/introspection.rs: npm oidc-provider (a certified
// OpenID Provider) on 127.0.0.1, issuing opaque access tokens by client_credentials for the
// resource https://api.test, with introspection and revocation on. Clients:
//   batch / batch-secret       gets tokens (scopes read:orders write:orders)
//   resigner / resigner-secret introspects them (what resigner is configured with)
// Prints {"issuer": ...} on one line once listening; runs until killed.
import http from 'node:http';
import Provider from 'oidc-provider';

const audience = process.argv[2] ?? 'https://api.test';
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'batch',
      client_secret: 'batch-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'read:orders write:orders',
    },
    {
      client_id: 'resigner',
      client_secret: 'resigner-secret',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
    },
  ],
  scopes: ['read:orders', 'write:orders'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'read:orders write:orders',
        audience,
        accessTokenTTL: 3600,
        accessTokenFormat: 'opaque',
      }),
    },
  },
});
server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));
