#!/usr/bin/env bash
# Soak (issue #17 section 5): one resigner (release build, file store) under a steady mixed
# load for SOAK_SECONDS (default 600), with faults on a schedule, sampling every 10 s into a
# CSV. Loopback only, bounded in time; not part of `cargo test`.
#
#   benches/soak.sh                      # 10 minutes
#   SOAK_SECONDS=120 benches/soak.sh     # a short proof run
#   KEEP=1 benches/soak.sh               # keep the work directory (CSV, logs)
#   CACHE_ENTRIES=10000 (default 50000): the re-sign cache bound, so a short run reaches it
#   WARMUP=60 (default: 60 s, or a third of a shorter run): growth is measured from the first
#   sample after it with the cache at its bound (memory grows with the cache until then)
#
# Load (wrk, each connection paced by a Lua delay() so the rate stays bounded): cache hits
# (one token, HIT_CONNS x 1000/HIT_DELAY_MS req/s), misses (a new token per request), and
# rejections (a token with a bad signature, 401 by design). Faults: a key-set PUT every 5 s,
# a config change (reload) every 30 s, an IdP key rotation at 1/2 of the run (a new key
# added to the IdP's JWKS), an upstream restart at 2/3 (down for 1 s: 502s by design).
# Sampled every 10 s: RSS (kB), open fds, threads, cache entries, requests, 5xx, 502s
# (upstream down, by design), other 5xx, 4xx, config reloads, key-set version.
# Output: soak.csv in the work dir (copied to $OUT if set) and a summary: growth of RSS, fds,
# threads and cache entries from the first sample after WARMUP to the last, per hour.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-600}
CACHE_ENTRIES=${CACHE_ENTRIES:-50000}
WARMUP=${WARMUP:-$(( SOAK_SECONDS / 3 < 60 ? SOAK_SECONDS / 3 : 60 ))}
HIT_CONNS=${HIT_CONNS:-4} HIT_DELAY_MS=${HIT_DELAY_MS:-1}
MISS_CONNS=${MISS_CONNS:-2} MISS_DELAY_MS=${MISS_DELAY_MS:-5}
BAD_CONNS=${BAD_CONNS:-1} BAD_DELAY_MS=${BAD_DELAY_MS:-10}
ISSUER="https://idp.soak/"
AUDIENCE="https://api.soak"
TOKEN_SECRET="soak-admin-token-0123456789abcdef"

need=()
for tool in nginx wrk curl python3; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_IDP=$(free_port) P_UP=$(free_port) P_RS=$(free_port) P_ADMIN=$(free_port)

WORK=$(mktemp -d /tmp/resigner-soak.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

echo "== building (release), fixture"
cargo build --release --quiet --bin resigner
cargo bench --quiet --bench load_fixture -- "$WORK/fx" 100000 "$ISSUER" "$AUDIENCE" 2>&1 | { grep -v '^$' || true; }
BIN=target/release/resigner
mkdir -p "$WORK/www" "$WORK/keys"
cp "$WORK/fx/jwks.json" "$WORK/www/jwks.json" && chmod -R a+rX "$WORK/www"
TOKEN=$(head -n1 "$WORK/fx/tokens.txt")
BAD_TOKEN="${TOKEN%.*}.$(printf 'x%.0s' $(seq 1 342))"
TOKEN_SHA=$(printf '%s' "$TOKEN_SECRET" | "$BIN" token hash)
for i in 0 1 2 3; do "$BIN" keys generate --out "$WORK/keys/k$i" >/dev/null 2>&1; done
"$BIN" keys generate --alg RS256 --out "$WORK/keys/idp-next" >/dev/null 2>&1

nginx_conf() { # $1 name, $2 server block
  cat > "$WORK/$1.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; $2 }
NGX
}
nginx_conf idp "server { listen 127.0.0.1:$P_IDP; location = /jwks.json { default_type application/json; alias $WORK/www/jwks.json; } }"
nginx_conf upstream "server { listen 127.0.0.1:$P_UP; location / { default_type text/plain; return 200 'ok'; } }"
nginx -c "$WORK/idp.conf" & PIDS+=($!)
start_upstream() { nginx -c "$WORK/upstream.conf" & UP_PID=$!; PIDS+=($!); }
start_upstream

cp "$WORK/fx/store-ES256.json" "$WORK/store.json"
write_config() { # $1 reload number (changes the file, so the watcher reloads it)
  cat > "$WORK/resigner.toml" <<TOML
# reload $1
[server]
listen = "127.0.0.1:$P_RS"
[admin]
listen = "127.0.0.1:$P_ADMIN"
[[admin.tokens]]
name = "soak"
sha256 = "$TOKEN_SHA"
scopes = ["read:custom_signing_keys", "create:custom_signing_keys", "update:custom_signing_keys", "delete:custom_signing_keys"]
[idp]
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$P_IDP/jwks.json"
[signing]
issuer = "https://resigner.soak/"
[[signing.keys]]
path = "fx/signing-ES256.pem"
alg = "ES256"
[keys]
store = "store.json"
[cache]
max_entries = $CACHE_ENTRIES
[[routes]]
prefix = "/api"
upstream = "http://127.0.0.1:$P_UP"
audience = "$AUDIENCE"
[routes.claims]
audience = "legacy-$(( $1 % 2 ))"
TOML
}
write_config 0
RUST_LOG=warn "$BIN" serve --config "$WORK/resigner.toml" 2>"$WORK/resigner.log" &
RS_PID=$!; PIDS+=("$RS_PID")
for _ in $(seq 1 200); do curl -fs -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz" && break; sleep 0.05; done
curl -fs -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz"

cat > "$WORK/paced.lua" <<'LUA'
-- args: delay_ms [tokens_file]: a request every delay_ms per connection; with a token file,
-- a new token per request (cache misses), else the Authorization header given to wrk.
local tokens, i, pause = {}, 0, 1
function init(args)
  pause = tonumber(args[1]) or 1
  if args[2] then for line in io.lines(args[2]) do tokens[#tokens + 1] = line end end
  i = math.random(#tokens > 0 and #tokens or 1)
end
function delay() return pause end
function request()
  if #tokens == 0 then return wrk.format("GET", wrk.path) end
  i = i % #tokens + 1
  return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA
URL="http://127.0.0.1:$P_RS/api/x"
wrk -t1 -c"$HIT_CONNS" -d"${SOAK_SECONDS}s" -s "$WORK/paced.lua" -H "Authorization: Bearer $TOKEN" "$URL" -- "$HIT_DELAY_MS" >"$WORK/wrk-hit.txt" 2>&1 & PIDS+=($!)
wrk -t1 -c"$MISS_CONNS" -d"${SOAK_SECONDS}s" -s "$WORK/paced.lua" "$URL" -- "$MISS_DELAY_MS" "$WORK/fx/tokens.txt" >"$WORK/wrk-miss.txt" 2>&1 & PIDS+=($!)
wrk -t1 -c"$BAD_CONNS" -d"${SOAK_SECONDS}s" -s "$WORK/paced.lua" -H "Authorization: Bearer $BAD_TOKEN" "$URL" -- "$BAD_DELAY_MS" >"$WORK/wrk-bad.txt" 2>&1 & PIDS+=($!)

# `name{labels} value` lines of /metrics -> the sums the CSV wants.
sample() { # $1 elapsed seconds
  local metrics status
  metrics=$(curl -s "http://127.0.0.1:$P_ADMIN/metrics")
  status=$(curl -s "http://127.0.0.1:$P_ADMIN/admin/status")
  local rss fds threads
  rss=$(awk '/VmRSS/ { print $2 }' "/proc/$RS_PID/status")
  threads=$(awk '/Threads/ { print $2 }' "/proc/$RS_PID/status")
  fds=$(ls "/proc/$RS_PID/fd" | wc -l)
  python3 - "$1" "$rss" "$fds" "$threads" "$metrics" "$status" <<'PY'
import json, re, sys
t, rss, fds, threads, metrics, status = sys.argv[1:7]
status = json.loads(status)
req = s5 = s502 = s4 = reloads = 0
for line in metrics.splitlines():
    m = re.match(r'resigner_requests_total\{(.*)\} (\d+)', line)
    if m:
        code = re.search(r'status="(\d+)"', m.group(1)).group(1)
        n = int(m.group(2)); req += n
        if code.startswith("5"): s5 += n
        if code == "502": s502 += n
        if code.startswith("4"): s4 += n
    m = re.match(r'resigner_config_reloads_total\{result="ok"\} (\d+)', line)
    if m: reloads = int(m.group(1))
print(",".join(map(str, [t, rss, fds, threads, status["cache_entries"], req, s5, s502, s5 - s502, s4, reloads, status["store"]["version"]])))
PY
}
CSV="$WORK/soak.csv"
echo "seconds,rss_kb,fds,threads,cache_entries,requests,status_5xx,status_502,other_5xx,status_4xx,reloads_ok,keyset_version" > "$CSV"
SIGNING=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["keys"][0]))' "$WORK/fx/store-ES256.json")
put_keys() { # $1 index of the extra key
  curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN_SECRET" -H 'Content-Type: application/json' \
    --data "{\"keys\": [$SIGNING, $(cat "$WORK/keys/k$(( $1 % 4 )).jwk.json")]}" \
    "http://127.0.0.1:$P_ADMIN/api/v2/keys/custom-signing" || echo "PUT $1 failed" >&2
}
echo "== soak for ${SOAK_SECONDS}s; sampling every 10 s into soak.csv"
START=$(date +%s); RELOADS=0; ROTATED=""; RESTARTED=""; PUTS=0
sample 0 | tee -a "$CSV"
NEXT_SAMPLE=10
while :; do
  NOW=$(( $(date +%s) - START ))
  [ "$NOW" -ge "$SOAK_SECONDS" ] && break
  if [ $(( NOW / 5 )) -gt "$PUTS" ]; then PUTS=$(( NOW / 5 )); put_keys "$PUTS"; fi
  if [ $(( NOW / 30 )) -gt "$RELOADS" ]; then RELOADS=$(( NOW / 30 )); write_config "$RELOADS"; fi
  if [ -z "$ROTATED" ] && [ "$NOW" -ge $(( SOAK_SECONDS / 2 )) ]; then
    ROTATED=1
    python3 - "$WORK/www/jwks.json" "$WORK/keys/idp-next.jwk.json" <<'PY'
import json, sys
jwks = json.load(open(sys.argv[1])); jwks["keys"].append(json.load(open(sys.argv[2])))
json.dump(jwks, open(sys.argv[1], "w"))
PY
    chmod a+r "$WORK/www/jwks.json"; echo "   ${NOW}s: IdP key rotation (a new key published)"
  fi
  if [ -z "$RESTARTED" ] && [ "$NOW" -ge $(( SOAK_SECONDS * 2 / 3 )) ]; then
    RESTARTED=1; kill "$UP_PID"; wait "$UP_PID" 2>/dev/null || true; sleep 1; start_upstream
    echo "   ${NOW}s: upstream restarted (down 1 s)"
  fi
  if [ "$NOW" -ge "$NEXT_SAMPLE" ]; then sample "$NOW" | tee -a "$CSV"; NEXT_SAMPLE=$(( NEXT_SAMPLE + 10 )); fi
  sleep 0.2
done
sleep 1
sample "$SOAK_SECONDS" | tee -a "$CSV"
[ -n "${OUT:-}" ] && cp "$CSV" "$OUT"
for f in hit miss bad; do echo "wrk $f: $(grep -E 'requests in|Non-2xx|Socket errors' "$WORK/wrk-$f.txt" | tr -s ' ' | tr '\n' ';')"; done
python3 - "$CSV" "$WARMUP" "$CACHE_ENTRIES" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
after = [r for r in rows if int(r["seconds"]) >= int(sys.argv[2])] or rows[-1:]
full = [r for r in after if int(r["cache_entries"]) >= 0.98 * int(sys.argv[3])]
warm = (full or after)[0]
print(f"growth measured from {warm['seconds']} s ({'cache at its bound' if full else 'cache not yet full'})")
last = rows[-1]
hours = max(1, int(last["seconds"]) - int(warm["seconds"])) / 3600
for key in ("rss_kb", "fds", "threads", "cache_entries"):
    print(f"{key}: {warm[key]} after warm-up -> {last[key]} at the end ({(int(last[key]) - int(warm[key])) / hours:+.0f} per hour)")
print(f"requests {last['requests']}, 4xx {last['status_4xx']} (rejections by design), 502 {last['status_502']} (upstream restart, by design), other 5xx {last['other_5xx']}, reloads {last['reloads_ok']}, key-set version {last['keyset_version']}")
PY
