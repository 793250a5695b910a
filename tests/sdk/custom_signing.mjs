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
import { createRequire } from "node:module";

const SCRIPT = "custom_signing.mjs";

function fail(message) {
  process.stderr.write(`${SCRIPT}: ${message}\n`);
  process.exit(1);
}

let CustomSigningClient, Management, ManagementError, sdkVersion;
try {
  ({ CustomSigningClient } = await import("auth0/keys/customSigning"));
  ({ Management, ManagementError } = await import("auth0"));
  sdkVersion = createRequire(import.meta.url)("auth0/package.json").version;
} catch (err) {
  process.stderr.write(
    `${SCRIPT}: the npm package "auth0" is not installed in tests/sdk ` +
      `(run scripts/test.sh, or npm ci --prefix tests/sdk): ${err.message}\n`,
  );
  process.exit(2);
}

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

const summary = { sdk: "auth0", language: "node", version: sdkVersion, node: process.version, steps: [] };
const show = (value) => JSON.stringify(value);

/** Runs a call that must succeed; returns its data. */
async function ok(step, call) {
  let data;
  try {
    data = await call();
  } catch (err) {
    fail(`${step}: expected success, the SDK threw ${err?.name}: ${err?.message}`);
  }
  summary.steps.push({ step, ok: true });
  return data;
}

/** Runs a call that must throw the SDK's `ErrorClass` with `status` and a body naming `needle`. */
async function rejects(step, call, ErrorClass, status, needle) {
  let data;
  try {
    data = await call();
  } catch (err) {
    if (!(err instanceof ErrorClass)) {
      fail(`${step}: expected ${ErrorClass.name}, the SDK threw ${err?.constructor?.name}: ${err?.message}`);
    }
    if (!(err instanceof ManagementError)) {
      fail(`${step}: ${err.constructor.name} is not a ManagementError`);
    }
    if (err.statusCode !== status) {
      fail(`${step}: expected statusCode ${status}, got ${err.statusCode}`);
    }
    const body = err.body;
    if (typeof body !== "object" || body === null) {
      fail(`${step}: expected the parsed JSON error body, got ${show(body)}`);
    }
    if (body.statusCode !== status || typeof body.error !== "string" || typeof body.errorCode !== "string") {
      fail(`${step}: expected an Auth0 error body {statusCode: ${status}, error, message, errorCode}, got ${show(body)}`);
    }
    if (typeof body.message !== "string" || !body.message.includes(needle)) {
      fail(`${step}: expected body.message to contain ${show(needle)}, got ${show(body.message)}`);
    }
    const entry = {
      step,
      error: err.constructor.name,
      statusCode: err.statusCode,
      errorCode: body.errorCode,
      message: body.message,
    };
    summary.steps.push(entry);
    return entry;
  }
  fail(`${step}: expected ${ErrorClass.name} (${status}), the call succeeded with ${show(data)}`);
}

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
