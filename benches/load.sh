#!/usr/bin/env bash
# Load benchmark (issue #6): resigner side by side with nginx and HAProxy, in one run, on
# loopback only, bounded in time. Not part of `cargo test`.
#
#   benches/load.sh                 # about 5 minutes on a 2-core machine (+6 the first time)
#   DURATION=5 benches/load.sh      # shorter scenarios
#   PROFILE=1 benches/load.sh       # also perf-profile each resigner scenario (text tables)
#   KEEP=1 benches/load.sh          # keep the work directory (fixture, configs, logs)
#   COMPARE=1 benches/load.sh       # only nginx proxy and the hyper floor (benches/hyper_floor.rs), each also with the hit's token,
#                                   # resigner hit and passthrough, alternated 3 times
#                                   # (ROUNDS=N), with the median ratios
#
# Installs nginx, haproxy and wrk from Debian when missing, and builds oha (fixed-rate load)
# once into target/bench-tools. Pinning (when 2+ cores): the server under test and the
# upstream on core 0, the load generator on core 1.
# Scenarios: 1 upstream direct (nginx, fixed body); 2 nginx plain reverse proxy (keepalive);
# 3 HAProxy jwt_verify RS256 with iss/aud/exp checks; 4 resigner passthrough, cache hit,
# verify-only (a new token per request), miss with ES256 and RS256 output (a new token per
# request); 5 hit p99 alone and while a second client drives RS256 misses; p50/p99 of nginx
# and of the resigner hit path at a fixed 40% of nginx's capacity (oha); resident memory
# with 100k cached tokens; miss throughput with 1 and 2 workers; passthrough and hit on the
# work-stealing scheduler for comparison with the default per-core workers.
# Every row also gives the CPU time of the server under test per request (utime+stime of all
# its processes and threads from /proc over the measurement, divided by the requests the
# load generator completed): nginx proxy, HAProxy or resigner; the upstream nginx's own CPU
# is not counted (it is the same for every proxy). It is given whole, then as user and
# system time.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-200000}
ISSUER="https://idp.bench/"
AUDIENCE="https://api.bench"
P_UP=28081 P_NGX=28082 P_HAP=28083 P_RS=28084 P_ADMIN=28085 P_FLOOR=28086

need=()
for tool in nginx haproxy wrk taskset curl python3 ${PROFILE:+perf}; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(); for t in "${need[@]}"; do case $t in taskset) pkgs+=(util-linux);; perf) pkgs+=(linux-perf);; *) pkgs+=("$t");; esac; done
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
# oha holds a fixed request rate (wrk cannot; wrk2 is not packaged): built once from crates.io
# (about 6 minutes on 2 cores) into target/bench-tools.
OHA_VERSION=1.16.0
OHA=target/bench-tools/bin/oha
if ! "$OHA" --version 2>/dev/null | grep -q "$OHA_VERSION"; then
  echo "== installing oha $OHA_VERSION (once)"
  cargo install --quiet --locked --root target/bench-tools "oha@$OHA_VERSION"
fi

for port in $P_UP $P_NGX $P_HAP $P_RS $P_ADMIN $P_FLOOR; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (a stray nginx/haproxy/resigner from an earlier run?); stop it first" >&2
    exit 1
  fi
done

WORK=$(mktemp -d /tmp/resigner-load.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  if [ -z "${PROFILE:-}${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

if [ "$(nproc)" -ge 2 ]; then SRV="taskset -c 0"; LOAD="taskset -c 1"; PINNING="servers on cpu0, wrk on cpu1"
else SRV=""; LOAD=""; PINNING="no pinning (1 core)"; fi

echo "== building (release) and minting $TOKENS tokens"
cargo build --release --quiet --bin resigner
cargo bench --quiet --bench load_fixture -- "$WORK/fx" "$TOKENS" "$ISSUER" "$AUDIENCE" 2>&1 | { grep -v '^$' || true; }
BIN=target/release/resigner
# nginx workers run as an unprivileged user: give them a world-readable copy of the JWKS only.
mkdir -p "$WORK/www" && cp "$WORK/fx/jwks.json" "$WORK/www/" && chmod 711 "$WORK" && chmod -R a+rX "$WORK/www"
TOKEN=$(head -n1 "$WORK/fx/tokens.txt")

cat > "$WORK/miss.lua" <<'LUA'
-- i and wrapped are globals: done() reads them from each thread with thread:get, which
-- sees only globals.
local tokens, offset = {}, 0
i, wrapped = 0, 0
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  offset = tonumber(args[2]) or 0
  i = offset
end
function request()
  i = i + 1
  if i > #tokens then i = 1; wrapped = 1 end
  return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done()
  for _, t in ipairs(threads) do
    if t:get("wrapped") == 1 then io.write("WARNING: token list wrapped; later requests were cache hits\n") end
    io.write("TOKENS_USED " .. tostring(t:get("i")) .. "\n")
  end
end
LUA

nginx_conf() { # $1 name, $2 server block
  cat > "$WORK/$1.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$P_UP; keepalive 64; }
  $2
}
NGX
}
nginx_conf upstream "server { listen 127.0.0.1:$P_UP; location = /jwks.json { default_type application/json; alias $WORK/www/jwks.json; } location / { default_type text/plain; return 200 'ok'; } }"
nginx_conf proxy "server { listen 127.0.0.1:$P_NGX; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"

cat > "$WORK/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$P_HAP
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny status 401 unless { var(txn.bearer) -m found }
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('\$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('\$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny status 401 unless { var(txn.iss) -m str $ISSUER }
  http-request deny status 401 unless { var(txn.aud) -m str $AUDIENCE }
  http-request deny status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$WORK/fx/idp-public.pem") -m int 1 }
  default_backend be
backend be
  server up 127.0.0.1:$P_UP
HAP

resigner_conf() { # $1 output alg, $2 workers (0: one per core it may run on), $3 scheduler
  cp "$WORK/fx/store-$1.json" "$WORK/store-$1.json"
  cat > "$WORK/resigner-$1.toml" <<TOML
[server]
listen = "127.0.0.1:$P_RS"
workers = $2
scheduler = "$3"
[admin]
listen = "127.0.0.1:$P_ADMIN"
[idp]
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$P_UP/jwks.json"
[signing]
issuer = "https://resigner.bench/"
[[signing.keys]]
path = "fx/signing-$1.pem"
alg = "$1"
[keys]
store = "store-$1.json"
[cache]
max_entries = 1000000
[[routes]]
prefix = "/api"
upstream = "http://127.0.0.1:$P_UP"
audience = "$AUDIENCE"
[routes.claims]
audience = "legacy"
[[routes]]
prefix = "/verify"
mode = "verify"
upstream = "http://127.0.0.1:$P_UP"
audience = "$AUDIENCE"
[[routes]]
prefix = "/pass"
mode = "passthrough"
upstream = "http://127.0.0.1:$P_UP"
TOML
}

wait_http() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not up: $1" >&2; return 1; }

start_resigner() { # $1 alg, $2 workers (0: one per core it may run on), $3 scheduler [per_core]
  resigner_conf "$1" "$2" "${3:-per_core}"
  RUST_LOG=warn $SRV "$BIN" serve --config "$WORK/resigner-$1.toml" 2>"$WORK/resigner-$1.log" &
  RS_PID=$!; PIDS+=("$RS_PID"); SUT=$RS_PID
  wait_http "http://127.0.0.1:$P_ADMIN/readyz"
}
stop_resigner() { kill "$RS_PID" 2>/dev/null || true; wait "$RS_PID" 2>/dev/null || true; SUT=""; }

# wrk output -> "rps p50_ms p99_ms errors"
parse() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
    /WARNING/ { print > "/dev/stderr" }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }'
}

RESULTS="$WORK/results.txt"; : > "$RESULTS"
get() { awk -v n="$1" '$1 == n { print $'"$2"' }' "$RESULTS"; }
record() { # $1 name, $2 "rps p50_ms p99_ms errors cpu_us user_us sys_us": kept and printed
  echo "$1 $2" >> "$RESULTS"
  printf "%-40s %9s req/s  p50 %6s ms  p99 %6s ms  errors %s  CPU %6s us/req (user %s, sys %s)\n" "$1" $2
}
# CPU time of the server under test: SUT holds its PIDs (a master and its children for
# nginx); clock ticks of utime and of stime, each summed over them.
SUT=""
TICK_US=$((1000000 / $(getconf CLK_TCK)))
sut_ticks() { # -> "utime stime" in ticks
  local user=0 sys=0 pid u s
  for pid in $SUT $(for p in $SUT; do pgrep -P "$p" || true; done); do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    read -r u s < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12, $13 }')
    user=$((user + u)) sys=$((sys + s))
  done
  echo "$user $sys"
}
# $1 ticks before, $2 ticks after (each "utime stime"), $3 requests -> "total user sys"
# microseconds per request: the split shows whether a difference is in the program or in the
# kernel (#16: resigner's system time per request is nginx's; the gap is all user time).
cpu_us() {
  if [ -z "$SUT" ]; then echo "- - -"; return; fi
  local u0 s0 u1 s1; read -r u0 s0 <<< "$1"; read -r u1 s1 <<< "$2"
  awk -v u="$(( (u1 - u0) * TICK_US ))" -v s="$(( (s1 - s0) * TICK_US ))" -v r="$3" \
    'BEGIN { if (r > 0) printf "%.1f %.1f %.1f", (u + s) / r, u / r, s / r; else print "n/a n/a n/a" }'
}
run() { # $1 name, then wrk args
  local name=$1; shift
  local perf=""
  if [ -n "${PROFILE:-}" ] && [[ $name == resigner_* ]]; then
    # cpu-clock: a software event, so it works in VMs without a PMU; dwarf unwinding needs the
    # release profile's debug info (debug = 1 in Cargo.toml).
    perf record -q -e cpu-clock -F 999 -g --call-graph dwarf,16384 -p "$RS_PID" \
      -o "$WORK/$name.perf" -- sleep $((DURATION > 3 ? DURATION - 2 : 1)) 2>/dev/null & perf=$!
    PIDS+=("$perf")
  fi
  local t0; t0=$(sut_ticks)
  local out; out=$($LOAD wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" 2>&1)
  local t1; t1=$(sut_ticks)
  # Turned into text at the end: perf script takes seconds and would load the machine.
  if [ -n "$perf" ]; then wait "$perf" || true; fi
  local line; line=$(echo "$out" | parse)
  local requests; requests=$(echo "$out" | awk '/requests in/ { print $1 }')
  record "$name" "$line $(cpu_us "$t0" "$t1" "${requests:-0}")"
}

echo "== $PINNING; wrk -t1 -c$CONNS, ${DURATION}s per scenario"
$SRV nginx -c "$WORK/upstream.conf" & UP_PID=$!; PIDS+=("$UP_PID")
wait_http "http://127.0.0.1:$P_UP/"
$SRV nginx -c "$WORK/proxy.conf" & NGX_PID=$!; PIDS+=("$NGX_PID")
wait_http "http://127.0.0.1:$P_NGX/"
$SRV haproxy -q -f "$WORK/haproxy.cfg" & HAP_PID=$!; PIDS+=("$HAP_PID")
sleep 0.5

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

if [ -n "${COMPARE:-}" ]; then
  # nginx proxy, the hyper floor, resigner hit and passthrough, alternated, the same wrk
  # command and the same upstream; ratios per round, then their medians. nginx also proxies
  # the hit's own request (with its bearer token) for a same-request ratio beside the
  # token-less one the issue's figures use.
  ROUNDS=${ROUNDS:-3}
  FLOOR_BUILD=$(cargo bench --no-run --bench hyper_floor 2>&1) || { echo "$FLOOR_BUILD" >&2; exit 1; }
  FLOOR=$(echo "$FLOOR_BUILD" | sed -n 's/.*Executable .*(\(.*\))$/\1/p')
  $SRV "$FLOOR" "127.0.0.1:$P_FLOOR" "127.0.0.1:$P_UP" & FLOOR_PID=$!; PIDS+=("$FLOOR_PID")
  wait_http "http://127.0.0.1:$P_FLOOR/"
  start_resigner ES256 0
  curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
  for round in $(seq 1 "$ROUNDS"); do
    SUT=$NGX_PID run "nginx_proxy_$round" "http://127.0.0.1:$P_NGX/"
    SUT=$FLOOR_PID run "hyper_floor_$round" "http://127.0.0.1:$P_FLOOR/"
    SUT=$NGX_PID run "nginx_token_$round" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_NGX/"
    SUT=$FLOOR_PID run "floor_token_$round" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_FLOOR/"
    SUT=$RS_PID run "resigner_hit_$round" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
    SUT=$RS_PID run "resigner_passthrough_$round" "http://127.0.0.1:$P_RS/pass/x"
    echo "hit_rps $(ratio "$(get "resigner_hit_$round" 2)" "$(get "nginx_proxy_$round" 2)")" >> "$WORK/ratios.txt"
    echo "hit_cpu $(ratio "$(get "resigner_hit_$round" 6)" "$(get "nginx_proxy_$round" 6)")" >> "$WORK/ratios.txt"
    echo "pass_rps $(ratio "$(get "resigner_passthrough_$round" 2)" "$(get "nginx_proxy_$round" 2)")" >> "$WORK/ratios.txt"
    echo "pass_cpu $(ratio "$(get "resigner_passthrough_$round" 6)" "$(get "nginx_proxy_$round" 6)")" >> "$WORK/ratios.txt"
    echo "floor_cpu $(ratio "$(get "hyper_floor_$round" 6)" "$(get "nginx_proxy_$round" 6)")" >> "$WORK/ratios.txt"
    echo "hit_floor_cpu $(ratio "$(get "resigner_hit_$round" 6)" "$(get "hyper_floor_$round" 6)")" >> "$WORK/ratios.txt"
    echo "hit_user $(ratio "$(get "resigner_hit_$round" 7)" "$(get "nginx_proxy_$round" 7)")" >> "$WORK/ratios.txt"
    echo "hit_sys $(ratio "$(get "resigner_hit_$round" 8)" "$(get "nginx_proxy_$round" 8)")" >> "$WORK/ratios.txt"
    echo "hit_cpu_same $(ratio "$(get "resigner_hit_$round" 6)" "$(get "nginx_token_$round" 6)")" >> "$WORK/ratios.txt"
    echo "hit_rps_same $(ratio "$(get "resigner_hit_$round" 2)" "$(get "nginx_token_$round" 2)")" >> "$WORK/ratios.txt"
    echo "floor_token_cpu $(ratio "$(get "floor_token_$round" 6)" "$(get "nginx_proxy_$round" 6)")" >> "$WORK/ratios.txt"
    echo "floor_token_cpu_same $(ratio "$(get "floor_token_$round" 6)" "$(get "nginx_token_$round" 6)")" >> "$WORK/ratios.txt"
  done
  stop_resigner
  m() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/ratios.txt" | median; }
  all() { awk -v k="$1" '$1 == k { printf "%s ", $2 }' "$WORK/ratios.txt"; }
  echo
  echo "== medians of $ROUNDS rounds (machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'))"
  echo "hit / nginx proxy, req/s:              $(m hit_rps)   (rounds: $(all hit_rps); target >= 0.8)"
  echo "hit / nginx proxy, CPU per request:    $(m hit_cpu)   (rounds: $(all hit_cpu); target <= 1.1)"
  echo "passthrough / nginx proxy, req/s:      $(m pass_rps)   (rounds: $(all pass_rps); target >= 1.0)"
  echo "passthrough / nginx proxy, CPU/req:    $(m pass_cpu)   (rounds: $(all pass_cpu))"
  echo "hyper floor / nginx proxy, CPU/req:    $(m floor_cpu)   (rounds: $(all floor_cpu))"
  echo "hit / hyper floor, CPU per request:    $(m hit_floor_cpu)   (rounds: $(all hit_floor_cpu))"
  echo "hit / nginx proxy, user CPU/req:       $(m hit_user)   (rounds: $(all hit_user))"
  echo "hit / nginx proxy, system CPU/req:     $(m hit_sys)   (rounds: $(all hit_sys))"
  echo "nginx proxying the hit's own request (the same Authorization header, ~1.3 KB):"
  echo "hit / nginx proxy same request, req/s: $(m hit_rps_same)   (rounds: $(all hit_rps_same))"
  echo "hit / nginx proxy same request, CPU:   $(m hit_cpu_same)   (rounds: $(all hit_cpu_same))"
  echo "the hyper floor given the hit's request (the floor does no token work):"
  echo "floor with token / nginx proxy, CPU:   $(m floor_token_cpu)   (rounds: $(all floor_token_cpu))"
  echo "floor with token / nginx same req, CPU: $(m floor_token_cpu_same)   (rounds: $(all floor_token_cpu_same))"
  exit 0
fi

SUT=$UP_PID run upstream_direct "http://127.0.0.1:$P_UP/"
SUT=$NGX_PID run nginx_proxy "http://127.0.0.1:$P_NGX/"
# Fixed-rate latency: 40% of the nginx proxy's measured capacity, same -c, oha on cpu1,
# latencies measured from each request's scheduled start (no coordinated omission).
RATE=$(awk '$1 == "nginx_proxy" { printf "%d", $2 * 0.4 }' "$RESULTS")
rate() { # $1 name, then oha args
  local name=$1; shift
  local t0; t0=$(sut_ticks)
  $LOAD "$OHA" -z "${DURATION}s" -c "$CONNS" -q "$RATE" --latency-correction --no-tui \
    --worker-threads 1 --output-format json "$@" > "$WORK/$name.json"
  local line; line=$(python3 - "$WORK/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p, codes = d["latencyPercentiles"], d.get("statusCodeDistribution") or {}
# Requests still open when the duration ends are "aborted due to deadline": not errors.
failed = {e: n for e, n in (d.get("errorDistribution") or {}).items() if "deadline" not in e}
errors = sum(n for code, n in codes.items() if code != "200") + sum(failed.values())
print("%.0f %.2f %.2f %d %d" % (d["summary"]["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, errors, sum(codes.values())))
PY
)
  local t1; t1=$(sut_ticks)
  record "$name" "${line% *} $(cpu_us "$t0" "$t1" "${line##* }")"
}
SUT=$NGX_PID rate nginx_proxy_at_40pct "http://127.0.0.1:$P_NGX/"
SUT=$HAP_PID run haproxy_jwt_verify -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_HAP/"

start_resigner ES256 0 work_stealing
run resigner_passthrough_work_stealing "http://127.0.0.1:$P_RS/pass/x"
run resigner_hit_work_stealing -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
stop_resigner

start_resigner ES256 0
run resigner_passthrough "http://127.0.0.1:$P_RS/pass/x"
run resigner_hit -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
rate resigner_hit_at_40pct_of_nginx -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
run resigner_verify_only -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/verify/x" -- "$WORK/fx/tokens.txt" 0
run resigner_miss_ES256 -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" 0
CACHED=$(curl -s "http://127.0.0.1:$P_ADMIN/admin/status" | sed 's/.*"cache_entries":\([0-9]*\).*/\1/')
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$RS_PID/status")
stop_resigner

start_resigner RS256 0
run resigner_miss_RS256 -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" 0
CONNS_SAVE=$CONNS; CONNS=8
run resigner_hit_alone_c8 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
STORM_RATE=$((RATE / 2))
RATE=$STORM_RATE rate resigner_hit_alone_fixed_rate -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
# Miss storm: a second wrk drives RS256 misses on the same core as the hit client, through
# both hit measurements (closed loop -c8, then the fixed rate).
$LOAD wrk -t1 -c16 -d"$((2 * DURATION + 3))s" -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" 100000 > "$WORK/storm.txt" 2>&1 &
STORM=$!; PIDS+=("$STORM")
sleep 1
# (no CPU per hit: the storm's misses share the process)
SUT="" run resigner_hit_under_miss_storm_c8 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
SUT="" RATE=$STORM_RATE rate resigner_hit_under_miss_storm_fixed_rate -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P_RS/api/x"
wait $STORM || true
STORM_RPS=$(parse < "$WORK/storm.txt" | cut -d' ' -f1)
CONNS=$CONNS_SAVE
stop_resigner

# Worker scaling. With two cores the load generator needs one, so two workers cannot get two
# free cores here; besides their raw rates, resigner's own CPU time per request (all its
# threads, /proc/PID/stat) tells whether a second worker adds cost per request, which is
# what would keep throughput from doubling on a machine with cores to spare.
start_resigner ES256 1
run resigner_miss_ES256_1worker -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" 0
CPU1=$(get resigner_miss_ES256_1worker 6)
stop_resigner
CPU2=""
if [ -n "$SRV" ]; then
  SRV_SAVE=$SRV; SRV=""
  start_resigner ES256 2
  run resigner_miss_ES256_2workers_unpinned -s "$WORK/miss.lua" "http://127.0.0.1:$P_RS/api/x" -- "$WORK/fx/tokens.txt" 0
  CPU2=$(get resigner_miss_ES256_2workers_unpinned 6)
  stop_resigner
  SRV=$SRV_SAVE
fi

CRYPTO=$(cat "$WORK/fx/crypto.json")
num() { echo "$CRYPTO" | sed "s/.*\"$1\":\([0-9.]*\).*/\1/"; }
RS_CEIL=$(awk -v s="$(num RS256_sign_per_s)" -v v="$(num RS256_verify_per_s)" 'BEGIN { printf "%.0f", 1 / (1/s + 1/v) }')
ES_CEIL=$(awk -v s="$(num ES256_sign_per_s)" -v v="$(num RS256_verify_per_s)" 'BEGIN { printf "%.0f", 1 / (1/s + 1/v) }')

echo
echo "== ratios (machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'))"
echo "raw crypto, 1 core: $CRYPTO"
echo "hit / nginx proxy:                       $(ratio "$(get resigner_hit 2)" "$(get nginx_proxy 2)")   (target >= 0.8)"
echo "CPU per request, hit / nginx proxy:      $(ratio "$(get resigner_hit 6)" "$(get nginx_proxy 6)")   (target <= 1.1)"
echo "CPU per request, passthrough / nginx:    $(ratio "$(get resigner_passthrough 6)" "$(get nginx_proxy 6)")"
echo "CPU per request, verify-only / haproxy:  $(ratio "$(get resigner_verify_only 6)" "$(get haproxy_jwt_verify 6)")"
echo "hit p99 / nginx p99 at $RATE req/s:       $(ratio "$(get resigner_hit_at_40pct_of_nginx 4)" "$(get nginx_proxy_at_40pct 4)")   (target <= 1.2)"
echo "hit / haproxy jwt_verify:                $(ratio "$(get resigner_hit 2)" "$(get haproxy_jwt_verify 2)")   (target >= 1.5)"
echo "verify-only / haproxy jwt_verify:        $(ratio "$(get resigner_verify_only 2)" "$(get haproxy_jwt_verify 2)")   (target >= 1.0)"
echo "passthrough / nginx proxy:               $(ratio "$(get resigner_passthrough 2)" "$(get nginx_proxy 2)")"
echo "hit per_core / work_stealing scheduler:  $(ratio "$(get resigner_hit 2)" "$(get resigner_hit_work_stealing 2)")"
echo "RS256 miss / crypto ceiling ($RS_CEIL/s):  $(ratio "$(get resigner_miss_RS256 2)" "$RS_CEIL")   (target >= 0.8)"
echo "ES256 miss / crypto ceiling ($ES_CEIL/s): $(ratio "$(get resigner_miss_ES256 2)" "$ES_CEIL")   (target >= 0.5)"
echo "hit p99 under miss storm / alone, fixed $STORM_RATE hits/s: $(ratio "$(get resigner_hit_under_miss_storm_fixed_rate 4)" "$(get resigner_hit_alone_fixed_rate 4)")   (target <= 1.5; storm drove $STORM_RPS misses/s in all)"
echo "  the same, closed loop -c8 (saturates the core): $(ratio "$(get resigner_hit_under_miss_storm_c8 4)" "$(get resigner_hit_alone_c8 4)")"
echo "ES256 miss, 2 workers unpinned / 1 pinned: $(ratio "$(get resigner_miss_ES256_2workers_unpinned 2)" "$(get resigner_miss_ES256_1worker 2)")   (target >= 1.8; wrk shares the cores when unpinned)"
if [ -n "$CPU2" ]; then
  echo "resigner CPU per ES256 miss: 1 worker ${CPU1} us, 2 workers ${CPU2} us -> 2 workers on 2 free cores, projected: $(awk -v a="$CPU1" -v b="$CPU2" 'BEGIN { printf "%.2f", 2 * a / b }')x one"
fi
echo "resident memory: $((RSS_KB / 1024)) MiB with $CACHED cached tokens"
if [ -n "${PROFILE:-}" ]; then
  echo "== profiles (perf_inclusive.py)"
  for data in "$WORK"/*.perf; do
    name=$(basename "$data" .perf)
    perf script -i "$data" 2>/dev/null | python3 benches/perf_inclusive.py 0.5 > "$WORK/profile-$name.txt"
    echo "$WORK/profile-$name.txt"
  done
fi
