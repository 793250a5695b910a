"""What both Python SDK drivers (custom_signing.py, signing_keys.py) share: failing with a
message (exit 1; a missing SDK is exit 2, so tests/it/sdk.rs fails saying so), and recording
each step of a run in the JSON summary: a call that must succeed, or one that must raise the
SDK's own error class with Auth0's error body `{statusCode, error, message, errorCode}`.
"""

import json
import sys


def missing_sdk(script, err):
    sys.stderr.write(
        f"{script}: the PyPI package auth0-python 6.x is not installed for {sys.executable} "
        f"(run scripts/test.sh, or python3 -m pip install 'auth0-python>=6,<7'): {err}\n"
    )
    sys.exit(2)


def start(script):
    """The steps of one run of `script` (exit 2 when the SDK is missing)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        from auth0.management.core.api_error import ApiError

        sdk_version = version("auth0-python")
    except (ImportError, PackageNotFoundError) as err:
        missing_sdk(script, err)
    return Steps(script, ApiError, sdk_version)


class Steps:
    """The summary of one run of `script`: the SDK, and every step in `summary["steps"]`."""

    def __init__(self, script, api_error, sdk_version):
        self.script = script
        self.api_error = api_error
        self.summary = {
            "sdk": "auth0-python",
            "language": "python",
            "version": sdk_version,
            "python": sys.version.split()[0],
            "steps": [],
        }

    def fail(self, message):
        sys.stderr.write(f"{self.script}: {message}\n")
        sys.exit(1)

    def ok(self, step, call):
        try:
            data = call()
        except Exception as err:  # noqa: BLE001 - any exception is the mismatch to report
            self.fail(f"{step}: expected success, the SDK raised {type(err).__name__}: {err}")
        self.summary["steps"].append({"step": step, "ok": True})
        return data

    def rejects(self, step, call, error_class, status, needle):
        try:
            data = call()
        except Exception as err:  # noqa: BLE001
            if not isinstance(err, error_class):
                self.fail(f"{step}: expected {error_class.__name__}, the SDK raised {type(err).__name__}: {err}")
            if not isinstance(err, self.api_error):
                self.fail(f"{step}: {type(err).__name__} is not an ApiError")
            if err.status_code != status:
                self.fail(f"{step}: expected status_code {status}, got {err.status_code}")
            body = err.body
            if not isinstance(body, dict):
                self.fail(f"{step}: expected the parsed JSON error body, got {body!r}")
            if (
                body.get("statusCode") != status
                or not isinstance(body.get("error"), str)
                or not isinstance(body.get("errorCode"), str)
            ):
                self.fail(
                    f"{step}: expected an Auth0 error body {{statusCode: {status}, error, message, "
                    f"errorCode}}, got {json.dumps(body)}"
                )
            message = body.get("message")
            if not isinstance(message, str) or needle not in message:
                self.fail(f"{step}: expected body['message'] to contain {needle!r}, got {message!r}")
            entry = {
                "step": step,
                "error": type(err).__name__,
                "statusCode": err.status_code,
                "errorCode": body["errorCode"],
                "message": message,
            }
            self.summary["steps"].append(entry)
            return entry
        self.fail(f"{step}: expected {error_class.__name__} ({status}), the call succeeded with {data!r}")
