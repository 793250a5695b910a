#!/usr/bin/env bash
# Replica benchmark (issue #12): three resigner processes (release build) on one throwaway
# PostgreSQL, and one on the file store, side by side in one run, on loopback only, bounded in
# time. Not part of `cargo test`.
#
#   benches/replicas.sh              # about 2 minutes on a 2-core machine
#   PUTS=500 benches/replicas.sh     # more PUTs for the convergence figures (default 300)
#   DURATION=5 benches/replicas.sh   # shorter wrk runs (default 8 s each, 4 runs)
#   KEEP=1 benches/replicas.sh       # keep the work directory (configs, logs, raw samples)
#
# Measures:
#  (a) convergence: for each PUT through replica 1, the time from its 200 until replicas 2
#      and 3 publish the same JWKS (polled every ~1 ms with If-None-Match: the ETag replica 1
#      publishes; 304 = converged); p50/p99/max over PUTS PUTs, each changing the set. An
#      upper bound: it includes reading replica 1's ETag and the round trip of the poll that
#      saw the new set (both printed, as "first poll sent" and "one poll's round trip");
#  (b) PUT latency (client-side, keep-alive) against the file store and the PostgreSQL store,
#      interleaved one by one;
#  (c) cache-hit throughput (wrk) and resigner CPU per request (utime+stime of the process
#      from /proc/PID/stat) of replica 1 (PostgreSQL) and of the file-store resigner,
#      alternating PG, file, PG, file. Servers on cpu0, wrk on cpu1.
# PostgreSQL: initdb + postgres from /usr/lib/postgresql/*/bin in the work dir, on a free
# loopback port, as the `postgres` user (setpriv) when run as root. Installs nginx (IdP JWKS and
# upstream) and wrk from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PUTS=${PUTS:-300}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
ISSUER="https://idp.bench/"
AUDIENCE="https://api.bench"
TOKEN_SECRET="bench-admin-token-0123456789abcdef"

need=()
for tool in nginx wrk taskset curl python3 setpriv; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(); for t in "${need[@]}"; do case $t in taskset|setpriv) pkgs+=(util-linux);; *) pkgs+=("$t");; esac; done
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
  echo "PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_UP=$(free_port) P_PG=$(free_port) P_FILE=$(free_port) P_FILE_ADMIN=$(free_port)
P_PUB=() P_ADM=()
for i in 1 2 3; do P_PUB[$i]=$(free_port); P_ADM[$i]=$(free_port); done

WORK=$(mktemp -d /tmp/resigner-replicas.XXXXXX)
chmod 755 "$WORK"
PIDS=()
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w -s stop >/dev/null 2>&1 || true
  fi
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

if [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 0"; LOAD="taskset -c 1"; PINNING="servers on cpu0, wrk and the PUT/poll client on cpu1"
else SRV=""; LOAD=""; PINNING="no pinning (1 core)"; fi

echo "== building (release), fixture, keys"
cargo build --release --quiet --bin resigner
cargo bench --quiet --bench load_fixture -- "$WORK/fx" 4 "$ISSUER" "$AUDIENCE" 2>&1 | { grep -v '^$' || true; }
BIN=target/release/resigner
mkdir -p "$WORK/www" "$WORK/keys" && cp "$WORK/fx/jwks.json" "$WORK/www/" && chmod -R a+rX "$WORK/www"
TOKEN=$(head -n1 "$WORK/fx/tokens.txt")
TOKEN_SHA=$(printf '%s' "$TOKEN_SECRET" | "$BIN" token hash)
# Ten extra public keys: the PUTs cycle through {signing key, key i}, so each changes the set.
for i in $(seq 0 9); do "$BIN" keys generate --out "$WORK/keys/k$i" >/dev/null 2>&1; done

echo "== PostgreSQL ($PG_BIN) on 127.0.0.1:$P_PG"
mkdir -p "$WORK/pg/sock"
[ ${#AS_PG[@]} -gt 0 ] && chown -R postgres:postgres "$WORK/pg"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1
$SRV "${AS_PG[@]}" "$PG_BIN/postgres" -D "$WORK/pg/data" -p "$P_PG" -k "$WORK/pg/sock" \
  -c listen_addresses=127.0.0.1 -c shared_buffers=32MB -c max_connections=40 >"$WORK/postgres.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do "$PG_BIN/pg_isready" -q -U postgres -h "$WORK/pg/sock" -p "$P_PG" && break; sleep 0.05; done
PSQL=("${AS_PG[@]}" "$PG_BIN/psql" -q -h "$WORK/pg/sock" -p "$P_PG" -U postgres -d postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE ROLE resigner LOGIN PASSWORD 'bench-store-pw'" -c "CREATE DATABASE resigner OWNER resigner"
PG_URL="postgres://resigner:bench-store-pw@127.0.0.1:$P_PG/resigner?sslmode=disable"

cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_UP; location = /jwks.json { default_type application/json; alias $WORK/www/jwks.json; } location / { default_type text/plain; return 200 'ok'; } }
}
NGX
$SRV nginx -c "$WORK/nginx.conf" & PIDS+=($!)

conf() { # $1 name, $2 public port, $3 admin port, $4 store, $5 more [keys] lines
  cat > "$WORK/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$2"
[admin]
listen = "127.0.0.1:$3"
[[admin.tokens]]
name = "bench"
sha256 = "$TOKEN_SHA"
scopes = ["read:custom_signing_keys", "create:custom_signing_keys", "update:custom_signing_keys", "delete:custom_signing_keys"]
[idp]
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$P_UP/jwks.json"
[signing]
issuer = "https://resigner.bench/"
[[signing.keys]]
path = "fx/signing-ES256.pem"
alg = "ES256"
[keys]
store = "$4"
${5:-}
[cache]
max_entries = 100000
[[routes]]
prefix = "/api"
upstream = "http://127.0.0.1:$P_UP"
audience = "$AUDIENCE"
[routes.claims]
audience = "legacy"
TOML
}
wait_http() { for _ in $(seq 1 400); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not up: $1" >&2; return 1; }
declare -A PID_OF
start() { # $1 name
  RUST_LOG=warn $SRV "$BIN" serve --config "$WORK/$1.toml" 2>"$WORK/$1.log" &
  PID_OF[$1]=$!; PIDS+=($!)
}

cp "$WORK/fx/store-ES256.json" "$WORK/file-store.json"
conf file "$P_FILE" "$P_FILE_ADMIN" "file-store.json"
start file
for i in 1 2 3; do
  conf "replica$i" "${P_PUB[$i]}" "${P_ADM[$i]}" "$PG_URL&application_name=replica$i" "cache = \"replica$i-cache.json\""
  start "replica$i"
  wait_http "http://127.0.0.1:${P_ADM[$i]}/healthz"
done
wait_http "http://127.0.0.1:$P_FILE_ADMIN/readyz"
# The first PUT publishes the signing key in the database; then every replica is ready.
curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN_SECRET" -H 'Content-Type: application/json' \
  --data "{\"keys\": $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["keys"]))' "$WORK/fx/store-ES256.json")}" \
  "http://127.0.0.1:${P_ADM[1]}/api/v2/keys/custom-signing"
for i in 1 2 3; do wait_http "http://127.0.0.1:${P_ADM[$i]}/readyz"; done
echo "== $PINNING; machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"

echo "== (a) convergence over $PUTS PUTs through replica 1, (b) PUT latency file vs PostgreSQL"
$LOAD python3 - "$WORK" "$PUTS" "$TOKEN_SECRET" "${P_ADM[1]}" "${P_PUB[2]}" "${P_PUB[3]}" "$P_FILE_ADMIN" "${P_PUB[1]}" <<'PY'
import http.client, json, sys, time, glob

work, puts, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
adm1, pub2, pub3, file_adm, pub1 = map(int, sys.argv[4:9])
signing = json.load(open(f"{work}/fx/store-ES256.json"))["keys"]
extra = [json.load(open(p)) for p in sorted(glob.glob(f"{work}/keys/*.jwk.json"))]
PATH = "/api/v2/keys/custom-signing"
HEADERS = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

def conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)

def request(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, r.headers, data

def body(i):
    return json.dumps({"keys": signing + [extra[i % len(extra)]]})

def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]

def summary(name, values):
    ms = [v * 1000 for v in values]
    line = f"{name:<34} n={len(ms):<4} p50 {pct(ms, 50):7.2f} ms  p99 {pct(ms, 99):7.2f} ms  max {max(ms):7.2f} ms"
    print(line)
    return {"n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms)}

pg, fs = conn(adm1), conn(file_adm)
# (b) interleaved PUTs, one by one, file store then PostgreSQL.
put_file, put_pg = [], []
for i in range(200):
    for c, out in ((fs, put_file), (pg, put_pg)):
        t = time.perf_counter()
        status, _, data = request(c, "PUT", PATH, body(i), HEADERS)
        out.append(time.perf_counter() - t)
        assert status == 200, (status, data)
# (a) convergence.
j1, followers = conn(pub1), [conn(pub2), conn(pub3)]
conv, conv_each, put_lat, polls, first_poll, rtt = [], [[], []], [], 0, [], []
for i in range(puts):
    t0 = time.perf_counter()
    status, _, data = request(pg, "PUT", PATH, body(i + 1), HEADERS)
    t_ok = time.perf_counter()
    assert status == 200, (status, data)
    put_lat.append(t_ok - t0)
    _, h, _ = request(j1, "GET", "/.well-known/jwks.json")
    etag = h["ETag"]
    pending, done_at = {0, 1}, {}
    first_poll.append(time.perf_counter() - t_ok)
    while pending:
        for k in sorted(pending):
            t = time.perf_counter()
            status, _, _ = request(followers[k], "GET", "/.well-known/jwks.json", headers={"If-None-Match": etag})
            rtt.append(time.perf_counter() - t)
            polls += 1
            if status == 304:
                done_at[k] = time.perf_counter() - t_ok
                pending.discard(k)
        if time.perf_counter() - t_ok > 10:
            raise SystemExit(f"PUT {i}: not converged after 10 s on {sorted(pending)}")
        if pending:
            time.sleep(0.001)
    conv.append(max(done_at.values()))
    for k in (0, 1):
        conv_each[k].append(done_at[k])
    time.sleep(0.005)
results = {
    "put_file": summary("PUT latency, file store", put_file),
    "put_pg": summary("PUT latency, PostgreSQL store", put_pg),
    "put_pg_during_convergence": summary("PUT latency, PG (convergence loop)", put_lat),
    "convergence_both": summary("convergence, both followers", conv),
    "convergence_replica2": summary("convergence, replica 2", conv_each[0]),
    "convergence_replica3": summary("convergence, replica 3", conv_each[1]),
    # The floor of the figures above: a follower already converged is only seen this late.
    "first_poll_sent": summary("first poll sent after the 200", first_poll),
    "poll_round_trip": summary("one poll's round trip", rtt),
}
print(f"(polls made: {polls}, {polls / puts:.1f} per PUT)")
json.dump(results, open(f"{work}/puts.json", "w"), indent=1)
PY

# Every replica ends on the same version and JWKS fingerprint.
for i in 1 2 3; do
  curl -s "http://127.0.0.1:${P_ADM[$i]}/admin/status" | python3 -c 'import json,sys; d = json.load(sys.stdin); print("replica'"$i"'", "version", d["store"]["version"], "sha256", d["jwks"]["sha256"][:16], "notifications", d["store"]["notifications"], "polls", d["store"]["polls"])'
done

echo "== (c) cache hits: wrk -t1 -c$CONNS ${DURATION}s, PG replica 1 vs file store, alternating"
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hits() { # $1 label, $2 pid, $3 public port
  local before after out rps
  curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$3/api/x"
  before=$(cpu_ticks "$2")
  out=$($LOAD wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$3/api/x" 2>&1)
  after=$(cpu_ticks "$2")
  echo "$out" | awk -v name="$1" -v ticks="$((after - before))" -v tick_us="$TICK_US" -v d="$DURATION" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 } /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
    END { printf "%-22s %9.0f req/s  p50 %5.2f ms  p99 %5.2f ms  CPU %5.1f us/req  errors %d\n", name, rps, p50, p99, ticks * tick_us / (rps * d), err }'
}
for round in 1 2; do
  hits "postgres (round $round)" "${PID_OF[replica1]}" "${P_PUB[1]}"
  hits "file (round $round)" "${PID_OF[file]}" "$P_FILE"
done
