"""Drives resigner's /api/v2/keys/custom-signing with Auth0's official Python SDK
(PyPI `auth0-python` 6.x, `Auth0(...).keys.custom_signing`), as tests/it/sdk.rs does in CI:

    python3 tests/sdk/custom_signing.py BASE_URL FULL_TOKEN READ_ONLY_TOKEN KEYS_JSON_FILE

BASE_URL is the management API base (`http://127.0.0.1:PORT/api/v2`); KEYS_JSON_FILE holds a
JSON array of two valid public JWKs (or `{"keys": [...]}`). The key set must be empty at the
start and is empty again at the end. Prints a JSON summary on stdout; on any mismatch prints
what was expected and what the SDK gave on stderr and exits 1 (2 when the SDK is missing).
"""

import json
import sys

SCRIPT = "custom_signing.py"

from steps import missing_sdk, start

try:
    from auth0.management import (
        Auth0,
        BadRequestError,
        CustomSigningKeyJwk,
        ForbiddenError,
        NotFoundError,
        UnauthorizedError,
    )
except ImportError as err:
    missing_sdk(SCRIPT, err)


def main(argv):
    steps = start(SCRIPT)
    summary = steps.summary
    fail, ok, rejects = steps.fail, steps.ok, steps.rejects

    if len(argv) != 4:
        fail("usage: python3 custom_signing.py BASE_URL FULL_TOKEN READ_ONLY_TOKEN KEYS_JSON_FILE")
    base_url, full_token, read_token, keys_file = argv
    try:
        with open(keys_file, encoding="utf-8") as f:
            parsed = json.load(f)
    except (OSError, ValueError) as err:
        fail(f"cannot read the keys from {keys_file}: {err}")
    keys = parsed if isinstance(parsed, list) else parsed.get("keys")
    if not isinstance(keys, list) or len(keys) != 2:
        fail(f"{keys_file} must hold two public JWKs, got {json.dumps(parsed)}")

    def client(token):
        return Auth0(base_url=base_url, token=token, max_retries=0, timeout=10).keys.custom_signing

    full = client(full_token)
    read_only = client(read_token)
    wrong = client("not-a-management-token")
    def same_keys(step, got):
        returned = None if got is None or got.keys is None else [key.dict() for key in got.keys]
        if returned != keys:
            fail(f"{step}: expected keys {json.dumps(keys)}, got {json.dumps(returned)}")

    models = [CustomSigningKeyJwk(**key) for key in keys]

    rejects("get (empty)", full.get, NotFoundError, 404, "No custom signing keys found")
    rejects("get (wrong token)", wrong.get, UnauthorizedError, 401, "Invalid token")

    same_keys("set", ok("set", lambda: full.set(keys=models)))
    same_keys("get", ok("get", full.get))

    private_key = CustomSigningKeyJwk(**{**keys[0], "d": "AAAA"})
    rejects(
        "set (private member d)",
        lambda: full.set(keys=[private_key, models[1]]),
        BadRequestError,
        400,
        'member "d" is private key material',
    )
    rejects(
        "set (read-only token)",
        lambda: read_only.set(keys=models),
        ForbiddenError,
        403,
        "create:custom_signing_keys",
    )
    same_keys("get (after the refused writes)", ok("get (after the refused writes)", full.get))

    deleted = ok("delete", full.delete)
    if deleted is not None:
        fail(f"delete: expected None, got {deleted!r}")
    rejects("get (after delete)", full.get, NotFoundError, 404, "No custom signing keys found")

    summary["kids"] = [key.get("kid") for key in keys]
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
