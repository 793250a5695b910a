// RFC 8693 token exchange against resigner with npm openid-client 6 (the certified OpenID
// relying party library), unmodified: discovery from resigner's issuer, then
// genericGrantRequest with the token-exchange grant, once per case.
//   node token_exchange.mjs ISSUER CASES_FILE
// CASES_FILE holds [{name, client_id, client_secret, auth: "basic"|"post", params: {...}}].
// Prints one JSON array: per case {name, ok, tokens} or {name, ok: false, error,
// error_description, status}, plus the discovered token_endpoint.
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';

const [issuer, casesFile] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
const results = [];
for (const c of cases) {
  const auth = c.auth === 'post'
    ? client.ClientSecretPost(c.client_secret)
    : client.ClientSecretBasic(c.client_secret);
  const config = await client.discovery(new URL(issuer), c.client_id, c.client_secret, auth, {
    execute: [client.allowInsecureRequests],
  });
  const tokenEndpoint = config.serverMetadata().token_endpoint;
  try {
    const tokens = await client.genericGrantRequest(
      config,
      'urn:ietf:params:oauth:grant-type:token-exchange',
      c.params,
    );
    results.push({ name: c.name, ok: true, token_endpoint: tokenEndpoint, tokens: { ...tokens } });
  } catch (err) {
    // A 401 with WWW-Authenticate is reported as a challenge; its body still has the error.
    let body = null;
    if (err.response && typeof err.response.json === 'function') {
      try { body = await err.response.json(); } catch { body = null; }
    }
    results.push({
      name: c.name,
      ok: false,
      token_endpoint: tokenEndpoint,
      error: err.error ?? body?.error ?? err.code ?? err.name,
      error_description: err.error_description ?? body?.error_description ?? err.message,
      status: err.status ?? err.response?.status ?? null,
      challenge: Array.isArray(err.cause) ? err.cause.map((c) => c.scheme) : null,
    });
  }
}
console.log(JSON.stringify(results));
