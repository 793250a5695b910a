#!/bin/bash
# Instructions per request of one resigner (or any) server under callgrind (#16): starts it under
# valgrind, warms up with 200 requests (oha -c4), zeroes the counters, sends N keep-alive requests,
# dumps and prints total / N. Uses the fixture, configs and upstream of a kept load.sh run:
#   KEEP=1 COMPARE=1 ROUNDS=1 DURATION=1 benches/load.sh   # prints "kept /tmp/resigner-load.XXXX"
#   WORK=/tmp/resigner-load.XXXX benches/callgrind.sh hit http://127.0.0.1:28084/api/x 20000 -- \
#     target/release/resigner serve --config /tmp/resigner-load.XXXX/resigner-ES256.toml
# Then: callgrind_annotate --inclusive=yes <the file it names>.
name=$1 url=$2 N=$3; shift 4
W=${WORK:?set WORK to a directory kept by KEEP=1 benches/load.sh}
TOKEN=$(head -n1 $W/fx/tokens.txt)
OHA=$(dirname "$0")/../target/bench-tools/bin/oha
pgrep -f upstream.conf >/dev/null || { taskset -c 0 nginx -c $W/upstream.conf >/dev/null 2>&1 & sleep 0.5; }
rm -f /tmp/cg.out.*
(cd $W && RUST_LOG=${RUST_LOG:-warn} exec valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out.%p "$@" >/dev/null 2>/tmp/cg.err) & P=$!
for _ in $(seq 200); do curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" $url && break; sleep 0.1; done
$OHA -n 200 -c4 --no-tui -H "Authorization: Bearer $TOKEN" $url >/dev/null
callgrind_control -z $P >/dev/null
$OHA -n $N -c4 --no-tui -H "Authorization: Bearer $TOKEN" $url | grep -E 'Success rate|Requests/sec' | tr '\n' ' '
callgrind_control -d $P >/dev/null; sleep 1
f=$(ls -t /tmp/cg.out.* | head -1)
ir=$(grep -h '^summary:\|^totals:' /tmp/cg.out.$P* | tail -1 | awk '{print $2}')
echo; echo "$name: $ir instr total, $((ir / N)) per request ($f)"
kill $P; wait $P 2>/dev/null
