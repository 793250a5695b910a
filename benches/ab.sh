#!/bin/bash
# A/B of two resigner builds on this machine (#16): both serve the config of a kept load.sh
# run at once (B on ports +10), nginx proxies beside them, and ROUNDS rounds of
# `wrk -t1 -c32` alternate nginx, A and B on the same path, servers on cpu0 and wrk on cpu1.
# Prints each run's req/s and CPU µs per request (utime+stime of the server, /proc) and the
# medians of B/A and of each against nginx: a change is measured against the build before
# it in one run, not against figures from another hour of a shared machine.
#   KEEP=1 COMPARE=1 ROUNDS=1 DURATION=4 benches/load.sh   # prints "kept /tmp/resigner-load.XXXX"
#   WORK=/tmp/resigner-load.XXXX benches/ab.sh old/resigner target/release/resigner [/api/x]
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") PATH_=${3:-/api/x}
W=${WORK:?set WORK to a directory kept by KEEP=1 benches/load.sh}
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-3}
TOKEN=$(head -n1 "$W/fx/tokens.txt")
SRV="taskset -c 0" LOAD="taskset -c 1"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
pgrep -f "$W/upstream.conf" >/dev/null || { $SRV nginx -c "$W/upstream.conf" & PIDS+=($!); }
pgrep -f "$W/proxy.conf" >/dev/null || { $SRV nginx -c "$W/proxy.conf" & PIDS+=($!); }
# One config and key store per build (B's ports moved by 10).
for side in a b; do
  cp "$W/store-ES256.json" "$W/ab-store-$side.json"
  sed -e "s/store-ES256.json/ab-store-$side.json/" "$W/resigner-ES256.toml" > "$W/ab-$side.toml"
done
sed -i -e 's/:28084"/:28094"/' -e 's/:28085"/:28095"/' "$W/ab-b.toml"
(cd "$W" && RUST_LOG=warn exec $SRV "$A" serve --config ab-a.toml > ab-a.log 2>&1) & PA=$!; PIDS+=($PA)
(cd "$W" && RUST_LOG=warn exec $SRV "$B" serve --config ab-b.toml > ab-b.log 2>&1) & PB=$!; PIDS+=($PB)
for port in 28084 28094; do
  for _ in $(seq 100); do curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$PATH_" && break; sleep 0.1; done
done
NGX=$(cat "$W/proxy.pid")
ticks() { # $@ pids -> utime+stime ticks summed
  local t=0 pid
  for pid in "$@" $(for p in "$@"; do pgrep -P "$p" || true; done); do
    [ -r "/proc/$pid/stat" ] || continue
    t=$((t + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
  done
  echo $t
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
declare -A CPU RPS
one() { # $1 label, $2 port, $3.. pids
  local label=$1 port=$2; shift 2
  local t0 t1 out n
  t0=$(ticks "$@")
  out=$($LOAD wrk -t1 -c32 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$PATH_" 2>&1)
  t1=$(ticks "$@")
  n=$(echo "$out" | awk '/requests in/ { print $1 }')
  CPU[$label]+="$(awk -v t=$(( (t1 - t0) * TICK_US )) -v n="$n" 'BEGIN { printf "%.2f", t / n }') "
  RPS[$label]+="$(echo "$out" | awk '/Requests\/sec/ { printf "%d", $2 }') "
}
# TOGETHER=1: A and B loaded at the same time (one wrk each, both on cpu1), so both see the
# same moment of a noisy machine; each one's CPU per request is its own ticks over its own
# requests. Their sum of load is what one server gets alone, so the figures are not
# comparable with a run of one server; B / A is.
both() {
  local t0a t0b t1a t1b out na nb
  t0a=$(ticks "$PA"); t0b=$(ticks "$PB")
  $LOAD wrk -t1 -c16 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:28084$PATH_" > "$W/ab-wrk-a.txt" 2>&1 &
  local wa=$!
  $LOAD wrk -t1 -c16 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:28094$PATH_" > "$W/ab-wrk-b.txt" 2>&1
  wait $wa
  t1a=$(ticks "$PA"); t1b=$(ticks "$PB")
  na=$(awk '/requests in/ { print $1 }' "$W/ab-wrk-a.txt"); nb=$(awk '/requests in/ { print $1 }' "$W/ab-wrk-b.txt")
  CPU[A]+="$(awk -v t=$(( (t1a - t0a) * TICK_US )) -v n="$na" 'BEGIN { printf "%.2f", t / n }') "
  CPU[B]+="$(awk -v t=$(( (t1b - t0b) * TICK_US )) -v n="$nb" 'BEGIN { printf "%.2f", t / n }') "
  RPS[A]+="$(awk '/Requests\/sec/ { printf "%d", $2 }' "$W/ab-wrk-a.txt") "
  RPS[B]+="$(awk '/Requests\/sec/ { printf "%d", $2 }' "$W/ab-wrk-b.txt") "
}
for round in $(seq "$ROUNDS"); do
  one nginx 28082 "$NGX"
  if [ -n "${TOGETHER:-}" ]; then both; else one A 28084 "$PA"; one B 28094 "$PB"; fi
  echo "round $round: CPU us/req nginx $(echo ${CPU[nginx]} | awk '{print $NF}') A $(echo ${CPU[A]} | awk '{print $NF}') B $(echo ${CPU[B]} | awk '{print $NF}')"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios() { # $1 $2 labels -> per-round ratios of CPU $1/$2
  paste -d' ' <(echo ${CPU[$1]} | tr ' ' '\n') <(echo ${CPU[$2]} | tr ' ' '\n') | awk '{ printf "%.3f ", $1 / $2 }'
}
echo "CPU/req medians (us): nginx $(echo ${CPU[nginx]} | median)  A $(echo ${CPU[A]} | median)  B $(echo ${CPU[B]} | median)"
echo "req/s medians: nginx $(echo ${RPS[nginx]} | median)  A $(echo ${RPS[A]} | median)  B $(echo ${RPS[B]} | median)"
echo "B / A CPU:     $(ratios B A | median)   (rounds: $(ratios B A))"
echo "A / nginx CPU: $(ratios A nginx | median)   (rounds: $(ratios A nginx))"
echo "B / nginx CPU: $(ratios B nginx | median)   (rounds: $(ratios B nginx))"
