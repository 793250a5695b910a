// Drives resigner's /api/v2/keys/signing (managed signing keys) with Auth0's official Node SDK
// (npm `auth0` 7.x, `SigningClient`), as tests/it/sdk.rs does in CI:
//
//   node tests/sdk/signing_keys.mjs BASE_URLS FULL_TOKEN READ_ONLY_TOKEN
//
// BASE_URLS is one management API base (`http://127.0.0.1:PORT/api/v2`) or several separated by
// commas (replicas of one store): reads, the rotation and the revocation go through different
// ones, and after each change every one is polled until it shows the change (at most 1 s). The
// keys need a current and a next key old enough to rotate (min_published_age = 0s). Rotates
// once and revokes the key that was current. Prints a JSON summary on stdout; on any mismatch
// prints what was expected and what the SDK gave on stderr and exits 1 (2 when the SDK is
// missing).

import { driver, show } from "./steps.mjs";

const SETTLE_MS = 1000;

const { modules, fail, summary, ok, rejects } = await driver("signing_keys.mjs", [
  "auth0/keys/signing",
  "auth0",
]);
const [{ SigningClient }, { Management, ManagementError }] = modules;
const [baseUrls, fullToken, readToken] = process.argv.slice(2);
if (!readToken) {
  fail("usage: node signing_keys.mjs BASE_URLS FULL_TOKEN READ_ONLY_TOKEN");
}
const bases = baseUrls.split(",");
const client = (baseUrl, token) =>
  new SigningClient({ baseUrl, token, maxRetries: 0, timeoutInSeconds: 10 });
const full = bases.map((base) => client(base, fullToken));
const via = (i) => full[i % full.length];
const readOnly = client(bases[0], readToken);
const wrong = client(bases[0], "not-a-management-token");

summary.replicas = bases.length;
summary.settle_ms = [];

/** The kid of the one key with `flag` set, or a failure naming the list. */
function only(step, keys, flag) {
  const found = keys.filter((key) => key[flag] === true);
  if (found.length !== 1) {
    fail(`${step}: expected one ${flag} key, got ${show(keys)}`);
  }
  return found[0].kid;
}

function wellFormed(step, key) {
  const pem = /^-----BEGIN CERTIFICATE-----\r?\n[\s\S]+-----END CERTIFICATE-----\r?\n?$/;
  if (typeof key.kid !== "string" || !pem.test(key.cert ?? "")) {
    fail(`${step}: expected a kid and a PEM certificate, got ${show(key)}`);
  }
  if (!/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/.test(key.fingerprint) || !/^[0-9A-F]{40}$/.test(key.thumbprint)) {
    fail(`${step}: expected a SHA-1 fingerprint and thumbprint, got ${show(key)}`);
  }
}

/** Polls every replica's list until `holds(keys)` is true on all; records how long it took. */
async function settle(step, holds) {
  const start = Date.now();
  for (;;) {
    const lists = await Promise.all(full.map((c) => c.list()));
    if (lists.every(holds)) {
      summary.steps.push({ step, ok: true });
      summary.settle_ms.push(Date.now() - start);
      return lists[0];
    }
    if (Date.now() - start > SETTLE_MS) {
      fail(`${step}: not on every replica within ${SETTLE_MS} ms: ${show(lists)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const before = await ok("list", () => via(0).list());
before.forEach((key) => wellFormed("list", key));
const current = only("list", before, "current");
const next = only("list", before, "next");
const one = await ok("get (next)", () => via(1).get(next));
if (one.kid !== next || one.next !== true || one.current === true) {
  fail(`get (next): expected ${next} flagged next, got ${show(one)}`);
}
await rejects("get (unknown kid)", () => via(1).get("no-such-kid"), Management.NotFoundError, 404, "no-such-kid");
await rejects("list (wrong token)", () => wrong.list(), Management.UnauthorizedError, 401, "Invalid token");
await rejects("rotate (read-only token)", () => readOnly.rotate(), Management.ForbiddenError, 403, "create:signing_keys");

const rotated = await ok("rotate", () => via(1).rotate());
if (typeof rotated.kid !== "string" || [current, next].includes(rotated.kid) || !rotated.cert?.includes("BEGIN CERTIFICATE")) {
  fail(`rotate: expected a new kid and its certificate, got ${show(rotated)}`);
}
const flags = (keys, kid) => keys.find((key) => key.kid === kid) ?? {};
await settle("list (every replica, after rotate)", (keys) =>
  flags(keys, next).current === true &&
  flags(keys, rotated.kid).next === true &&
  flags(keys, current).previous === true,
);
// Auth0's API description lists no 409 for revoke, so the SDK raises its base class for it.
await rejects("revoke (current)", () => via(2).revoke(next), ManagementError, 409, "previous");

const revoked = await ok("revoke (previous)", () => via(2).revoke(current));
if (revoked.kid !== current || !revoked.cert?.includes("BEGIN CERTIFICATE")) {
  fail(`revoke: expected {kid: ${current}, cert}, got ${show(revoked)}`);
}
await settle("list (every replica, after revoke)", (keys) =>
  flags(keys, current).revoked === true && typeof flags(keys, current).revoked_at === "string",
);
const gone = await ok("get (revoked)", () => via(0).get(current));
if (gone.revoked !== true || gone.previous === true || gone.current === true) {
  fail(`get (revoked): expected ${current} revoked only, got ${show(gone)}`);
}

summary.kids = { current, next, rotated: rotated.kid };
process.stdout.write(`${JSON.stringify(summary)}\n`);
