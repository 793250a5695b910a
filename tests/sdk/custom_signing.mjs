// Drives resigner's /api/v2/keys/custom-signing with Auth0's official Node SDK (npm `auth0` 7.x,
// `CustomSigningClient`), as tests/it/sdk.rs does in CI:
//
//   node tests/sdk/custom_signing.mjs BASE_URL FULL_TOKEN READ_ONLY_TOKEN KEYS_JSON_FILE
//
// BASE_URL is the management API base (`http://127.0.0.1:PORT/api/v2`); KEYS_JSON_FILE holds a
// JSON array of two valid public JWKs (or `{"keys": [...]}`). The key set must be empty at the
// start and is empty again at the end. Prints a JSON summary on stdout; on any mismatch prints
// what was expected and what the SDK gave on stderr and exits 1 (2 when the SDK is missing).

import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";

import { driver, show } from "./steps.mjs";

const { modules, fail, summary, ok, rejects } = await driver("custom_signing.mjs", [
  "auth0/keys/customSigning",
  "auth0",
]);
const [{ CustomSigningClient }, { Management }] = modules;
const [baseUrl, fullToken, readToken, keysFile] = process.argv.slice(2);
if (!keysFile) {
  fail("usage: node custom_signing.mjs BASE_URL FULL_TOKEN READ_ONLY_TOKEN KEYS_JSON_FILE");
}
let parsed;
try {
  parsed = JSON.parse(readFileSync(keysFile, "utf8"));
} catch (err) {
  fail(`cannot read the keys from ${keysFile}: ${err.message}`);
}
const keys = Array.isArray(parsed) ? parsed : parsed.keys;
if (!Array.isArray(keys) || keys.length !== 2) {
  fail(`${keysFile} must hold two public JWKs, got ${JSON.stringify(parsed)}`);
}

const client = (token) =>
  new CustomSigningClient({ baseUrl, token, maxRetries: 0, timeoutInSeconds: 10 });
const full = client(fullToken);
const readOnly = client(readToken);
const wrong = client("not-a-management-token");

function sameKeys(step, got) {
  if (!got || !isDeepStrictEqual(got.keys, keys)) {
    fail(`${step}: expected {keys: ${show(keys)}}, got ${show(got)}`);
  }
}

await rejects("get (empty)", () => full.get(), Management.NotFoundError, 404, "No custom signing keys found");
await rejects("get (wrong token)", () => wrong.get(), Management.UnauthorizedError, 401, "Invalid token");

const set = await ok("set", () => full.set({ keys }));
sameKeys("set", set);
const read = await ok("get", () => full.get());
sameKeys("get", read);

const privateKey = { ...keys[0], d: "AAAA" };
await rejects(
  "set (private member d)",
  () => full.set({ keys: [privateKey, keys[1]] }),
  Management.BadRequestError,
  400,
  'member "d" is private key material',
);
await rejects(
  "set (read-only token)",
  () => readOnly.set({ keys }),
  Management.ForbiddenError,
  403,
  "create:custom_signing_keys",
);
sameKeys("get (after the refused writes)", await ok("get (after the refused writes)", () => full.get()));

const deleted = await ok("delete", () => full.delete());
if (deleted !== undefined) {
  fail(`delete: expected no data, got ${show(deleted)}`);
}
await rejects("get (after delete)", () => full.get(), Management.NotFoundError, 404, "No custom signing keys found");

summary.kids = keys.map((key) => key.kid);
process.stdout.write(`${JSON.stringify(summary)}\n`);
