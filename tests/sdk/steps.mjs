// What both Node SDK drivers (custom_signing.mjs, signing_keys.mjs) share: loading npm `auth0`
// (exit 2 when it is missing, so tests/it/sdk.rs fails saying so), failing with a message
// (exit 1), and recording each step of a run in the JSON summary: a call that must succeed,
// or one that must throw the SDK's own error class with Auth0's error body
// `{statusCode, error, message, errorCode}`.

import { createRequire } from "node:module";

export const show = (value) => JSON.stringify(value);

/** The driver named `script`: its failure, its summary, and the SDK modules it imports. */
export async function driver(script, specifiers) {
  const fail = (message) => {
    process.stderr.write(`${script}: ${message}\n`);
    process.exit(1);
  };
  let modules, version;
  try {
    modules = await Promise.all(specifiers.map((s) => import(s)));
    version = createRequire(import.meta.url)("auth0/package.json").version;
  } catch (err) {
    process.stderr.write(
      `${script}: the npm package "auth0" is not installed in tests/sdk ` +
        `(run scripts/test.sh, or npm ci --prefix tests/sdk): ${err.message}\n`,
    );
    process.exit(2);
  }
  const { ManagementError } = await import("auth0");
  const summary = { sdk: "auth0", language: "node", version, node: process.version, steps: [] };

  /** Runs a call that must succeed; returns its data. */
  async function ok(step, call) {
    let data;
    try {
      data = await call();
    } catch (err) {
      fail(`${step}: expected success, the SDK threw ${err?.name}: ${err?.message} ${show(err?.body)}`);
    }
    summary.steps.push({ step, ok: true });
    return data;
  }

  /** Runs a call that must throw `ErrorClass` with `status` and a message naming `needle`. */
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

  return { modules, fail, summary, ok, rejects };
}
