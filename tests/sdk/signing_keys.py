"""Drives resigner's /api/v2/keys/signing (managed signing keys) with Auth0's official Python
SDK (PyPI `auth0-python` 6.x, `Auth0(...).keys.signing`), as tests/it/sdk.rs does in CI:

    python3 tests/sdk/signing_keys.py BASE_URLS FULL_TOKEN READ_ONLY_TOKEN

BASE_URLS is one management API base (`http://127.0.0.1:PORT/api/v2`) or several separated by
commas (replicas of one store): reads, the rotation and the revocation go through different
ones, and after each change every one is polled until it shows the change (at most 1 s). The
keys need a current and a next key old enough to rotate (min_published_age = 0s). Rotates once
and revokes the key that was current. Prints a JSON summary on stdout; on any mismatch prints
what was expected and what the SDK gave on stderr and exits 1 (2 when the SDK is missing).
"""

import json
import re
import sys
import time

SCRIPT = "signing_keys.py"
SETTLE_S = 1.0

from steps import missing_sdk, start

try:
    from auth0.management import (
        Auth0,
        ForbiddenError,
        NotFoundError,
        UnauthorizedError,
    )
except ImportError as err:
    missing_sdk(SCRIPT, err)


def main(argv):
    steps = start(SCRIPT)
    summary = steps.summary
    summary["settle_ms"] = []
    fail, ok, rejects = steps.fail, steps.ok, steps.rejects
    if len(argv) != 3:
        fail("usage: python3 signing_keys.py BASE_URLS FULL_TOKEN READ_ONLY_TOKEN")
    base_urls, full_token, read_token = argv
    bases = base_urls.split(",")

    def client(base_url, token):
        return Auth0(base_url=base_url, token=token, max_retries=0, timeout=10).keys.signing

    full = [client(base, full_token) for base in bases]

    def via(i):
        return full[i % len(full)]

    read_only = client(bases[0], read_token)
    wrong = client(bases[0], "not-a-management-token")
    summary["replicas"] = len(bases)

    def only(step, keys, flag):
        found = [key for key in keys if getattr(key, flag) is True]
        if len(found) != 1:
            fail(f"{step}: expected one {flag} key, got {keys!r}")
        return found[0].kid

    pem = re.compile(r"^-----BEGIN CERTIFICATE-----\r?\n[\s\S]+-----END CERTIFICATE-----\r?\n?$")

    def well_formed(step, key):
        if not isinstance(key.kid, str) or not pem.match(key.cert or ""):
            fail(f"{step}: expected a kid and a PEM certificate, got {key!r}")
        if not re.fullmatch(r"([0-9A-F]{2}:){19}[0-9A-F]{2}", key.fingerprint or "") or not re.fullmatch(
            r"[0-9A-F]{40}", key.thumbprint or ""
        ):
            fail(f"{step}: expected a SHA-1 fingerprint and thumbprint, got {key!r}")

    def flags(keys, kid):
        for key in keys:
            if key.kid == kid:
                return key
        return None

    def settle(step, holds):
        start = time.monotonic()
        while True:
            lists = [c.list() for c in full]
            if all(holds(keys) for keys in lists):
                summary["steps"].append({"step": step, "ok": True})
                summary["settle_ms"].append(round((time.monotonic() - start) * 1000))
                return lists[0]
            if time.monotonic() - start > SETTLE_S:
                fail(f"{step}: not on every replica within {SETTLE_S} s: {lists!r}")
            time.sleep(0.02)

    before = ok("list", lambda: via(0).list())
    for key in before:
        well_formed("list", key)
    current = only("list", before, "current")
    nxt = only("list", before, "next")
    one = ok("get (next)", lambda: via(1).get(nxt))
    if one.kid != nxt or one.next is not True or one.current is True:
        fail(f"get (next): expected {nxt} flagged next, got {one!r}")
    rejects("get (unknown kid)", lambda: via(1).get("no-such-kid"), NotFoundError, 404, "no-such-kid")
    rejects("list (wrong token)", wrong.list, UnauthorizedError, 401, "Invalid token")
    rejects("rotate (read-only token)", read_only.rotate, ForbiddenError, 403, "create:signing_keys")

    rotated = ok("rotate", lambda: via(1).rotate())
    if not isinstance(rotated.kid, str) or rotated.kid in (current, nxt) or "BEGIN CERTIFICATE" not in rotated.cert:
        fail(f"rotate: expected a new kid and its certificate, got {rotated!r}")

    def after_rotate(keys):
        now_current, new_next, old = flags(keys, nxt), flags(keys, rotated.kid), flags(keys, current)
        return (
            now_current is not None
            and now_current.current is True
            and new_next is not None
            and new_next.next is True
            and old is not None
            and old.previous is True
        )

    settle("list (every replica, after rotate)", after_rotate)
    # Auth0's API description lists no 409 for revoke, so the SDK raises its base class for it.
    rejects("revoke (current)", lambda: via(2).revoke(nxt), steps.api_error, 409, "previous")

    revoked = ok("revoke (previous)", lambda: via(2).revoke(current))
    if revoked.kid != current or "BEGIN CERTIFICATE" not in revoked.cert:
        fail(f"revoke: expected {{kid: {current}, cert}}, got {revoked!r}")

    def after_revoke(keys):
        old = flags(keys, current)
        return old is not None and old.revoked is True and isinstance(old.revoked_at, str)

    settle("list (every replica, after revoke)", after_revoke)
    gone = ok("get (revoked)", lambda: via(0).get(current))
    if gone.revoked is not True or gone.previous is True or gone.current is True:
        fail(f"get (revoked): expected {current} revoked only, got {gone!r}")

    summary["kids"] = {"current": current, "next": nxt, "rotated": rotated.kid}
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
