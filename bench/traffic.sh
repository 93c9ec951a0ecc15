#!/usr/bin/env bash
# Traffic benchmark: ingest rate of `portico traffic import` (through the running portal),
# latency of a month chart, and the server's memory after the import. See bench/README.md.
#
# Usage (from the repository root):   bench/traffic.sh
# Options (environment):
#   SERVICES=100 DAYS=730     services and days of 5-minute samples in the generated file
#                             (the issue's full size is SERVICES=1000: 210 M samples, ~8 GB of CSV)
#   DURATION=10s              wrk run length per figure
#   CHART_RUNS=3              runs of the month chart at 1 connection (the verdict: the median)
#   KEEP=0                    1 keeps the temp folder
# Exit status: 0 when the benchmark ran, 1 on a real error.
set -euo pipefail

SERVICES=${SERVICES:-100}
DAYS=${DAYS:-730}
DURATION=${DURATION:-10s}
CHART_RUNS=${CHART_RUNS:-3}
KEEP=${KEEP:-0}
T_INGEST=200000   # samples/s, at least
T_P99_MS=5        # month chart p99, at most
T_RSS_MB=150      # server RSS after the import, at most

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR"/release/portico
die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
for tool in cargo curl wrk awk python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-traffic-bench.XXXXXX")
DATA=$WORK/data
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "1/6 building the release binary"
cargo build --release --locked -p portico --bin portico >&2

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
log "2/6 the demo ISP on $URL"
"$BIN" demo --data "$DATA" --bind "127.0.0.1:$PORT" --themes themes > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do curl -sf -o /dev/null --max-time 1 "$URL/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "$URL/healthz" || { cat "$WORK/serve.log" >&2; die "the portal did not start"; }

log "3/6 $SERVICES Internet services (alice's and $((SERVICES - 1)) more), $DAYS days of 5-minute samples"
python3 - "$WORK" "$SERVICES" "$DAYS" <<'EOF'
import json, sys, time
work, services, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extra = services - 1
bundle = {
  "clients": [{"id": 100000 + i, "number": f"B{i}", "name": f"Bench {i}", "invoice_group_id": 1}
              for i in range(extra)],
  "services": [{"id": 100000 + i, "client_id": 100000 + i, "kind": "internet", "name": "Internet",
                "tariff_id": 1} for i in range(extra)],
}
json.dump(bundle, open(f"{work}/bundle.json", "w"))
ids = [1] + [100000 + i for i in range(extra)]
end = int(time.time()) // 300 * 300 - 300
start = end - days * 86400
curve = [20,12,8,6,6,8,14,24,32,36,40,42,46,46,48,52,58,66,78,90,96,80,54,34]
with open(f"{work}/traffic.csv", "w", buffering=1 << 22) as f:
  f.write("service_id,time,down,up\n")
  t = start
  while t <= end:
    w = curve[(t % 86400) // 3600] * 10000
    f.write("".join(f"{s},{t},{w + s},{w // 8}\n" for s in ids))
    t += 300
EOF
"$BIN" import "$WORK/bundle.json" --data "$DATA" >&2
SAMPLES=$(( $(wc -l < "$WORK/traffic.csv") - 1 ))
SIZE_MB=$(( $(stat -c %s "$WORK/traffic.csv") / 1048576 ))
log "    $SAMPLES samples, $SIZE_MB MiB of CSV"

log "4/6 portico traffic import (through the running portal)"
t0=$(date +%s%N)
"$BIN" traffic import "$WORK/traffic.csv" --data "$DATA" > "$WORK/import.txt"
t1=$(date +%s%N)
cat "$WORK/import.txt" >&2
SECS=$(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / 1e9 }")
RATE=$(awk "BEGIN { printf \"%.0f\", $SAMPLES / (($t1 - $t0) / 1e9) }")
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
RSS_NOW=$(rss)
# Once the operator has the answer, the portal reopens its store to give back what sled kept
# of the writes (docs/configuration.md, store_cache_mb), if the import wrote enough records to
# ask for it; the figure is taken after that.
for _ in $(seq 100); do grep -q "store reopened" "$WORK/serve.log" && break; sleep 0.1; done
grep -q "store reopened" "$WORK/serve.log" || log "    the store was not reopened (fewer records written than its threshold)"
# Then the memory freed by the reopen goes back to the system as the allocator purges it: the
# figure is taken once the portal has settled (two readings 2 s apart within 2 MB, at most
# 60 s), and so is the chart's latency below.
t_settle=$(date +%s)
prev=$(rss)
for _ in $(seq 30); do
  sleep 2; cur=$(rss)
  awk "BEGIN { exit !($prev - $cur < 2 && $cur - $prev < 2) }" && break
  prev=$cur
done
SETTLE_S=$(( $(date +%s) - t_settle ))
RSS_MB=$(rss)
HWM_MB=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")
STORE_MB=$(du -sm "$DATA/store" | cut -f1)

log "5/6 logging in as alice"
curl -s -o /dev/null -D "$WORK/sign.headers" --data-urlencode username=alice \
  --data-urlencode password=alice-demo-pass "$URL/sign/"
COOKIE=$(tr -d '\r' < "$WORK/sign.headers" | sed -n 's/^set-cookie: *\(portico_session=[^;]*\).*/\1/Ip' | head -1)
[[ -n $COOKIE ]] || die "no session cookie"
MONTH=$(date -u -d "@$(( $(date +%s) - 40 * 86400 ))" +%Y-%m-15)
PAGE="/traffic/1?period=month&date=$MONTH"
code=$(curl -s -o "$WORK/month.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$URL$PAGE")
[[ $code == 200 ]] && grep -q 'class="traffic-chart"' "$WORK/month.html" || die "the month chart answered $code"

log "6/6 wrk on $PAGE"
p99() { awk '/ 99%/ { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 }; printf "%.2f", v }' "$1"; }
rps() { awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$1"; }
# The hypervisor's share of the CPU while the 1-connection run lasts (steal time, from
# /proc/stat): on a shared VM it sets the tail that no page can go below; /healthz at one
# connection right after shows that floor.
steal() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# The 1-connection figure is taken CHART_RUNS times, each with its steal and /healthz floor;
# the verdict is on the median run, and every run is printed.
CHART_ROWS=()
P99S=()
for run in $(seq "$CHART_RUNS"); do
  read -r st0 all0 < <(steal)
  wrk -t1 -c1 -d"$DURATION" --latency -H "Cookie: $COOKIE" "$URL$PAGE" > "$WORK/wrk1-$run.txt"
  read -r st1 all1 < <(steal)
  steal_pct=$(awk "BEGIN { d = $all1 - $all0; if (d < 1) d = 1; printf \"%.0f\", 100 * ($st1 - $st0) / d }")
  wrk -t1 -c1 -d"$DURATION" --latency "$URL/healthz" > "$WORK/wrk-healthz-$run.txt"
  P99S+=("$(p99 "$WORK/wrk1-$run.txt")")
  CHART_ROWS+=("$(p99 "$WORK/wrk1-$run.txt") ms at $(rps "$WORK/wrk1-$run.txt") req/s; steal $steal_pct %; /healthz p99 $(p99 "$WORK/wrk-healthz-$run.txt") ms")
done
P99_1=$(printf '%s\n' "${P99S[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
wrk -t2 -c8 -d"$DURATION" --latency -H "Cookie: $COOKIE" "$URL$PAGE" > "$WORK/wrk8.txt"
P99_8=$(p99 "$WORK/wrk8.txt")
RSS_AFTER=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")

verdict() { awk "BEGIN { exit !($1) }" && echo ok || echo MISSED; }
printf '\n%-48s %14s %10s %s\n' "figure" "value" "target" ""
printf '%-48s %14s %10s %s\n' "samples imported ($SERVICES services x $DAYS days)" "$SAMPLES" "" ""
printf '%-48s %14s %10s %s\n' "import time (s)" "$SECS" "" ""
printf '%-48s %14s %10s %s\n' "ingest (samples/s)" "$RATE" ">= $T_INGEST" "$(verdict "$RATE >= $T_INGEST")"
printf '%-48s %14s %10s %s\n' "server RSS as the import answered (MB)" "$RSS_NOW" "" ""
printf '%-48s %14s %10s %s\n' "server RSS after import, settled in ${SETTLE_S} s (MB)" "$RSS_MB" "<= $T_RSS_MB" "$(verdict "$RSS_MB <= $T_RSS_MB")"
printf '%-48s %14s %10s %s\n' "server peak RSS (MB)" "$HWM_MB" "" ""
printf '%-48s %14s %10s %s\n' "store on disk (MB)" "$STORE_MB" "" ""
printf '%-48s %14s %10s %s\n' "month chart p99, 1 connection, median run (ms)" "$P99_1" "<= $T_P99_MS" "$(verdict "$P99_1 <= $T_P99_MS")"
printf '%-48s %14s %10s %s\n' "month chart p99, 8 connections (ms)" "$P99_8" "" ""
printf '%-48s %14s %10s %s\n' "month chart req/s, 8 connections" "$(rps "$WORK/wrk8.txt")" "" ""
printf '%-48s %14s %10s %s\n' "server RSS after the chart runs (MB)" "$RSS_AFTER" "" ""
echo
echo "month chart at 1 connection, each run (the hypervisor's steal meanwhile, /healthz right after):"
for i in "${!CHART_ROWS[@]}"; do echo "  run $((i + 1)): ${CHART_ROWS[$i]}"; done
