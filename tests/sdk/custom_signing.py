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


def fail(message):
    sys.stderr.write(f"{SCRIPT}: {message}\n")
    sys.exit(1)


try:
    from importlib.metadata import version

    from auth0.management import (
        Auth0,
        BadRequestError,
        CustomSigningKeyJwk,
        ForbiddenError,
        NotFoundError,
        UnauthorizedError,
    )
    from auth0.management.core.api_error import ApiError

    SDK_VERSION = version("auth0-python")
except ImportError as err:
    sys.stderr.write(
        f"{SCRIPT}: the PyPI package auth0-python 6.x is not installed for {sys.executable} "
        f"(run scripts/test.sh, or python3 -m pip install 'auth0-python>=6,<7'): {err}\n"
    )
    sys.exit(2)


def main(argv):
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
    summary = {
        "sdk": "auth0-python",
        "language": "python",
        "version": SDK_VERSION,
        "python": sys.version.split()[0],
        "steps": [],
    }

    def ok(step, call):
        try:
            data = call()
        except Exception as err:  # noqa: BLE001 - any exception is the mismatch to report
            fail(f"{step}: expected success, the SDK raised {type(err).__name__}: {err}")
        summary["steps"].append({"step": step, "ok": True})
        return data

    def rejects(step, call, error_class, status, needle):
        try:
            data = call()
        except Exception as err:  # noqa: BLE001
            if not isinstance(err, error_class):
                fail(f"{step}: expected {error_class.__name__}, the SDK raised {type(err).__name__}: {err}")
            if not isinstance(err, ApiError):
                fail(f"{step}: {type(err).__name__} is not an ApiError")
            if err.status_code != status:
                fail(f"{step}: expected status_code {status}, got {err.status_code}")
            body = err.body
            if not isinstance(body, dict):
                fail(f"{step}: expected the parsed JSON error body, got {body!r}")
            if (
                body.get("statusCode") != status
                or not isinstance(body.get("error"), str)
                or not isinstance(body.get("errorCode"), str)
            ):
                fail(
                    f"{step}: expected an Auth0 error body {{statusCode: {status}, error, message, "
                    f"errorCode}}, got {json.dumps(body)}"
                )
            message = body.get("message")
            if not isinstance(message, str) or needle not in message:
                fail(f"{step}: expected body['message'] to contain {needle!r}, got {message!r}")
            entry = {
                "step": step,
                "error": type(err).__name__,
                "statusCode": err.status_code,
                "errorCode": body["errorCode"],
                "message": message,
            }
            summary["steps"].append(entry)
            return entry
        fail(f"{step}: expected {error_class.__name__} ({status}), the call succeeded with {data!r}")

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
