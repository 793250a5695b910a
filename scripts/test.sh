#!/usr/bin/env bash
# The test command (README and .ci/run call it): installs what the tests need, then runs
# every test. PyJWT is the independent verifier used by tests/it/interop.rs; it must be
# present, so a missing tool fails the run instead of skipping a test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'pyjwt[crypto]>=2.8,<3'
fi

cargo test --all-targets --locked "$@"
