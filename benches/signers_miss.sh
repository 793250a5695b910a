#!/usr/bin/env bash
# The proxy's miss path per signer backend (issue #13): resigner with its signing key in memory
# and on a SoftHSM2 token, ES256 and RS256 output, a new IdP token per request (every request
# signs), side by side in one run; plus the cache-hit path with each, which must not change.
# Not part of `cargo test`.
#
#   benches/signers_miss.sh               # about 1.5 minutes on 2 cores
#   DURATION=5 benches/signers_miss.sh
#
# Needs nginx (the upstream and the IdP's JWKS), wrk and softhsm2 (installed from Debian when
# missing). Pinning (2+ cores): resigner and nginx on cpu0, wrk on cpu1. Prints req/s, p99 and
# resigner's CPU per request (utime+stime from /proc, µs).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-150000}
ISSUER="https://idp.bench/"
AUDIENCE="https://api.bench"
P_UP=28181 P_RS=28184 P_ADMIN=28185
MODULE=/usr/lib/softhsm/libsofthsm2.so

need=()
for tool in nginx wrk taskset curl softhsm2-util; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(); for t in "${need[@]}"; do case $t in taskset) pkgs+=(util-linux);; softhsm2-util) pkgs+=(softhsm2);; *) pkgs+=("$t");; esac; done
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/resigner-signers.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
if [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 0"; LOAD="taskset -c 1"; else SRV=""; LOAD=""; fi

echo "== building (release) and minting $TOKENS tokens"
cargo build --release --quiet --bin resigner
cargo bench --quiet --bench load_fixture -- "$WORK/fx" "$TOKENS" "$ISSUER" "$AUDIENCE" 2>&1 | { grep -v '^$' || true; }
BIN=target/release/resigner
mkdir -p "$WORK/www" && cp "$WORK/fx/jwks.json" "$WORK/www/" && chmod 711 "$WORK" && chmod -R a+rX "$WORK/www"
TOKEN=$(head -n1 "$WORK/fx/tokens.txt")

# SoftHSM2: one token, an ES256 and an RS256 pair generated on it by the CLI.
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > "$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
echo 1234 > "$WORK/pin"
for alg in ES256 RS256; do
  "$BIN" keys generate --alg "$alg" --kid "hsm-$alg" \
    --pkcs11 "module=$MODULE,token_label=bench,key_label=bench-$alg,pin_file=$WORK/pin" > "$WORK/hsm-$alg.jwk.json" 2>/dev/null
  python3 - "$WORK/hsm-$alg.jwk.json" "$WORK/fx/store-hsm-$alg.json" <<'PY'
import json, sys
jwk = json.load(open(sys.argv[1]))
json.dump({"version": 1, "keys": [jwk], "published_at": {jwk["kid"]: 0}}, open(sys.argv[2], "w"))
PY
done

cat > "$WORK/upstream.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_UP; location = /jwks.json { default_type application/json; alias $WORK/www/jwks.json; } location / { default_type text/plain; return 200 'ok'; } }
}
NGX

cat > "$WORK/miss.lua" <<'LUA'
local tokens, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  i = tonumber(args[2]) or 0
end
function request()
  i = i + 1
  if i > #tokens then i = 1; io.write("WARNING: token list wrapped; later requests were cache hits\n") end
  return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA

start_resigner() { # $1 backend (memory|pkcs11), $2 alg
  local store="store-$2.json" key="path = \"fx/signing-$2.pem\""
  if [ "$1" = pkcs11 ]; then
    store="store-hsm-$2.json"
    key="kid = \"hsm-$2\"
pkcs11 = { module = \"$MODULE\", token_label = \"bench\", key_label = \"bench-$2\", pin_file = \"pin\" }"
  fi
  cp "$WORK/fx/$store" "$WORK/store.json"
  cat > "$WORK/resigner.toml" <<TOML
[server]
listen = "127.0.0.1:$P_RS"
[admin]
listen = "127.0.0.1:$P_ADMIN"
[idp]
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$P_UP/jwks.json"
[signing]
issuer = "https://resigner.bench/"
[[signing.keys]]
alg = "$2"
$key
[keys]
store = "store.json"
[cache]
max_entries = 1000000
[[routes]]
prefix = "/api"
upstream = "http://127.0.0.1:$P_UP"
audience = "$AUDIENCE"
TOML
  RUST_LOG=warn $SRV "$BIN" serve --config "$WORK/resigner.toml" 2>"$WORK/resigner-$1-$2.log" &
  RS_PID=$!; PIDS+=("$RS_PID")
  for _ in $(seq 1 200); do curl -fs -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz" && return 0; sleep 0.05; done
  echo "resigner ($1 $2) not ready:" >&2; cat "$WORK/resigner-$1-$2.log" >&2; exit 1
}
stop_resigner() { kill "$RS_PID" 2>/dev/null || true; wait "$RS_PID" 2>/dev/null || true; }
ticks() { awk '{ print $14 + $15 }' "/proc/$RS_PID/stat"; }

printf "%-30s %9s %9s %9s %12s\n" scenario req/s p99_ms non2xx cpu_us/req
run() { # $1 name, then wrk args
  local name=$1; shift
  local t0; t0=$(ticks)
  local out; out=$($LOAD wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" 2>&1)
  local t1; t1=$(ticks)
  echo "$out" | awk -v name="$name" -v dt="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 } /^ +99%/ { p99 = ms($2) } /requests in/ { n = $1 }
    /Non-2xx/ { err += $NF } /WARNING/ { print > "/dev/stderr" }
    END { printf "%-30s %9.0f %9.2f %9d %12.1f\n", name, rps, p99, err, (n > 0 ? dt / hz * 1e6 / n : 0) }'
}

$SRV nginx -c "$WORK/upstream.conf" & PIDS+=($!)
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$P_UP/" && break; sleep 0.05; done
offset=0
for alg in ES256 RS256; do
  for backend in memory pkcs11; do
    start_resigner "$backend" "$alg"
    run "miss_${alg}_${backend}" -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" "$offset"
    run "hit_${alg}_${backend}" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
    stop_resigner
  done
done
