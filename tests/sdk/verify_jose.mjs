// npm `jose` as an independent verifier (tests/it/pkcs11.rs): verifies a token against a
// remote JWKS and prints its protected header and claims as JSON.
// Usage: node verify_jose.mjs JWKS_URL TOKEN AUDIENCE ISSUER ALG
import { createRemoteJWKSet, jwtVerify } from "jose";

const [url, token, audience, issuer, alg] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(url));
const { payload, protectedHeader } = await jwtVerify(token, jwks, {
  audience,
  issuer,
  algorithms: [alg],
  typ: "at+jwt",
});
console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
