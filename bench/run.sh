#!/usr/bin/env bash
# Portico end-to-end benchmark: import throughput, cold start, request rate and latency of
# /healthz and the logged-in Information page (/), and the server's memory; then the plugin
# benchmark (bench/plugins.sh: dynamic vs compiled-in page, dynamic hook call). See bench/README.md.
#
# Usage (from the repository root):   bench/run.sh [--quick]
#   --quick                           10 000 clients, 100 000 invoices, 5 s per figure, no
#                                     plugin benchmark: about a minute, for a developer's loop
# Options (environment):
#   CLIENTS=100000 INVOICES=1000000   size of the generated bundle
#   DURATION=15s CONNECTIONS=64       wrk run length and open connections (per endpoint)
#   THREADS=2                         wrk threads
#   PORT=                             port to serve on (default: a free one)
#   KEEP=0                            1 keeps the temp folder (bundle, store, logs, wrk output)
#   PHASES=auto                       time the import's parse / check / write phases:
#                                     auto = only when the import target fails, 1 = always, 0 = never
#   STRICT=0                          1 exits with status 2 when a target fails
#   PLUGINS=1                         0 skips bench/plugins.sh (its options apply: ROUNDS, N...)
# Exit status: 0 when the benchmark ran (whatever the targets say), 1 on a real error.
set -euo pipefail

for arg in "$@"; do
  case $arg in
    --quick) CLIENTS=${CLIENTS:-10000}; INVOICES=${INVOICES:-100000}; DURATION=${DURATION:-5s}
             PLUGINS=${PLUGINS:-0} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $arg (see --help)" >&2; exit 1 ;;
  esac
done

CLIENTS=${CLIENTS:-100000}
INVOICES=${INVOICES:-1000000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-}
KEEP=${KEEP:-0}
PHASES=${PHASES:-auto}
STRICT=${STRICT:-0}
PLUGINS=${PLUGINS:-1}

# Targets.
T_IMPORT_RPS=50000      # import records/s, at least
T_COLD_MS=1000          # serve ready, at most
T_RATIO=0.5             # information req/s ÷ healthz req/s, at least
T_TAB_RATIO=0.4         # services and invoicing req/s ÷ healthz req/s, at least
T_P99_MS=10             # p99 latency, at most
T_RSS_MB=150            # server RSS and peak RSS, at most

CLIENT_NUMBER=1001
CLIENT_NAME="Alice Nováková"   # client id 1 in examples/gen_bench_bundle.rs
PASSWORD=bench-password-1
NEW_PASSWORD="Seven purple kettles hum at dawn #42"   # if the first one is one-time

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Where cargo puts its builds (CARGO_TARGET_DIR, else ./target).
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR"/release/portico

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
now_ns() { date +%s%N; }
# Float arithmetic and comparisons through awk.
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
is_true() { awk "BEGIN { exit !($1) }"; }
# CPU time in seconds: the whole machine (busy, all CPUs), and one process (user + system).
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
machine_cpu_s() { awk -v t="$CLK_TCK" '/^cpu / {printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / t}' /proc/stat; }
process_cpu_s() { awk -v t="$CLK_TCK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }

for tool in cargo curl wrk awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || die "CLIENTS must be a positive whole number"
[[ $INVOICES =~ ^[0-9]+$ ]] || die "INVOICES must be a whole number"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive whole number"
(( THREADS <= CONNECTIONS )) || THREADS=$CONNECTIONS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
DATA=$WORK/data
SERVER_PID=

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # Rocket's graceful shutdown (grace 2 s + mercy 2 s), then force.
    for _ in $(seq 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server did not stop in 10 s; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

cleanup() {
  local rc=$?
  stop_server
  if [[ $KEEP == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
log "1/9 building (cargo build --release --bin portico --example gen_bench_bundle)"
cargo build --release --bin portico --example gen_bench_bundle >&2 \
  || die "the release build failed"

# ---------------------------------------------------------------------------------------------
log "2/9 generating a bundle: $CLIENTS clients, $INVOICES invoices"
gen() {
  cargo run --quiet --release --example gen_bench_bundle -- \
    --clients "$CLIENTS" --invoices "$INVOICES" "$@"
}
gen > "$WORK/bundle.json" || die "generating the bundle failed"
BUNDLE_MB=$(calc "$(stat -c %s "$WORK/bundle.json") / 1048576" 1)
log "    bundle.json: $BUNDLE_MB MiB"

# ---------------------------------------------------------------------------------------------
# Runs `portico import BUNDLE --data DIR`; sets IMPORT_NS, IMPORT_OUT and IMPORT_PEAK_KB; returns
# the import's exit status.
run_import() {
  local bundle=$1 data=$2 t0 t1 m0 m1 rc=0
  IMPORT_PEAK_KB=
  IMPORT_CPU_S=
  rm -f "$WORK/import.time"
  m0=$(machine_cpu_s)
  t0=$(now_ns)
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%M %U %S' -o "$WORK/import.time" \
      "$BIN" import "$bundle" --data "$data" > "$WORK/import.out" 2> "$WORK/import.err" || rc=$?
  else
    "$BIN" import "$bundle" --data "$data" > "$WORK/import.out" 2> "$WORK/import.err" || rc=$?
  fi
  t1=$(now_ns)
  m1=$(machine_cpu_s)
  IMPORT_NS=$(( t1 - t0 ))
  IMPORT_OUT=$(cat "$WORK/import.out")
  IMPORT_MACHINE_CPU_S=$(calc "$m1 - $m0" 2)
  if [[ -s $WORK/import.time ]]; then
    read -r IMPORT_PEAK_KB IMPORT_CPU_S < <(awk 'NF == 3 && $1 ~ /^[0-9]+$/ {print $1, $2 + $3}' "$WORK/import.time" | tail -1) || true
  fi
  return "$rc"
}

log "3/9 importing into a fresh data folder"
run_import "$WORK/bundle.json" "$DATA" || {
  cat "$WORK/import.err" >&2
  die "the import failed"
}
log "    $IMPORT_OUT"
FULL_NS=$IMPORT_NS
FULL_OUT=$IMPORT_OUT
if [[ -n $IMPORT_CPU_S ]]; then
  FULL_CPU_NOTE="import used $(calc "$IMPORT_CPU_S / ($FULL_NS / 1e9)" 2) CPUs, other processes $(calc "($IMPORT_MACHINE_CPU_S - $IMPORT_CPU_S) / ($FULL_NS / 1e9)" 2) (of $(nproc))"
else
  FULL_CPU_NOTE="the machine was $(calc "$IMPORT_MACHINE_CPU_S / ($FULL_NS / 1e9)" 2) CPUs busy during the import (of $(nproc))"
fi
RECORDS=$(sed -n 's/^imported \([0-9][0-9]*\) records.*/\1/p' <<<"$FULL_OUT")
if [[ -z $RECORDS ]]; then
  # 3 groups + 5 tariffs + clients + services + 6 messages + invoices + payments (1 per 4).
  RECORDS=$(( 3 + 5 + 2 * CLIENTS + 6 + INVOICES + (INVOICES + 3) / 4 ))
fi
IMPORT_S=$(calc "$FULL_NS / 1e9" 2)
IMPORT_RPS=$(calc "$RECORDS / ($FULL_NS / 1e9)" 0)
IMPORT_PEAK_MB=
if [[ -n $IMPORT_PEAK_KB ]]; then IMPORT_PEAK_MB=$(calc "$IMPORT_PEAK_KB / 1024" 0); fi
STORE_MB=$(calc "$(du -sk "$DATA" | cut -f1) / 1024" 0)

# Where the import's time goes: the same bundle with one bad record at the end is rejected after
# parsing (a wrong amount) or after checking (an unknown client), without writing anything.
PHASE_LINE=
if [[ $PHASES == 1 ]] || { [[ $PHASES == auto ]] && ! is_true "$IMPORT_RPS >= $T_IMPORT_RPS"; }; then
  log "    timing the import's phases (bundles rejected after parsing and after checking)"
  declare -A PHASE_NS=()
  for phase in parse check; do
    gen --invalid "$phase" > "$WORK/bundle-$phase.json" || die "generating the $phase bundle failed"
    if run_import "$WORK/bundle-$phase.json" "$WORK/data-$phase"; then
      die "the bundle made invalid at the $phase phase was accepted"
    fi
    grep -q 'rejected' "$WORK/import.err" || { cat "$WORK/import.err" >&2; die "the $phase-phase import failed unexpectedly"; }
    PHASE_NS[$phase]=$IMPORT_NS
    rm -rf "$WORK/bundle-$phase.json" "$WORK/data-$phase"
  done
  P_PARSE=$(calc "${PHASE_NS[parse]} / 1e9" 2)
  P_CHECK=$(calc "(${PHASE_NS[check]} - ${PHASE_NS[parse]}) / 1e9" 2)
  P_WRITE=$(calc "($FULL_NS - ${PHASE_NS[check]}) / 1e9" 2)
  PHASE_LINE="import phases (wall): read+parse ${P_PARSE} s, check ${P_CHECK} s, write+flush ${P_WRITE} s"
  log "    $PHASE_LINE"
fi

# ---------------------------------------------------------------------------------------------
log "4/9 setting the password of client $CLIENT_NUMBER"
echo "$PASSWORD" | "$BIN" client set-password "$CLIENT_NUMBER" --data "$DATA" > "$WORK/set-password.out" 2>&1 || {
  cat "$WORK/set-password.out" >&2
  die "setting the password failed"
}

# ---------------------------------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z $PORT ]]; then
  for _ in $(seq 50); do
    candidate=$(( 20000 + RANDOM % 40000 ))
    if port_free "$candidate"; then PORT=$candidate; break; fi
  done
  [[ -n $PORT ]] || die "found no free port"
fi
port_free "$PORT" || die "port $PORT is in use"
URL=http://127.0.0.1:$PORT

log "5/9 starting the server on $URL"
t0=$(now_ns)
"$BIN" serve --data "$DATA" --bind "127.0.0.1:$PORT" --themes themes > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
deadline=$(( t0 + 60 * 1000000000 ))
until curl -sf -o /dev/null --max-time 1 "$URL/healthz"; do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "the server exited during start-up"; }
  (( $(now_ns) < deadline )) || { cat "$WORK/serve.log" >&2; die "the server was not ready within 60 s"; }
  sleep 0.01
done
t1=$(now_ns)
COLD_MS=$(calc "($t1 - $t0) / 1e6" 0)
SERVER_SAYS=$(sed -n 's/.*(ready in \([0-9]*\) ms).*/\1/p' "$WORK/serve.log" | head -1)
log "    ready after $COLD_MS ms (the server reports ${SERVER_SAYS:-?} ms)"

# ---------------------------------------------------------------------------------------------
log "6/9 logging in as $CLIENT_NUMBER"
code=$(curl -s -o "$WORK/sign.html" -D "$WORK/sign.headers" -w '%{http_code}' \
  --data-urlencode "username=$CLIENT_NUMBER" --data-urlencode "password=$PASSWORD" "$URL/sign/") \
  || die "the login request failed"
# The cookie is `portico_session` (or `__Host-portico_session` behind TLS).
COOKIE=$(tr -d '\r' < "$WORK/sign.headers" \
  | sed -n 's/^set-cookie: *\(\(__Host-\)\{0,1\}portico_session=[^;]*\).*/\1/Ip' | head -1)
[[ -n $COOKIE ]] || { cat "$WORK/sign.headers" "$WORK/sign.html" >&2; die "no portico_session cookie after login (HTTP $code)"; }
LOCATION=$(tr -d '\r' < "$WORK/sign.headers" | sed -n 's/^location: *//Ip' | head -1)
[[ $code == 303 ]] || die "the login answered HTTP $code (location: ${LOCATION:-none}), not a 303 redirect"
# A password set by the operator works for one login; the client must then choose their own
# on /password/ before any other page shows.
if [[ $LOCATION == /password* ]]; then
  log "    the password was one-time: choosing a new one on /password/"
  code=$(curl -s -o "$WORK/password.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$URL/password/") \
    || die "GET /password/ failed"
  [[ $code == 200 ]] || die "GET /password/ answered HTTP $code"
  CSRF=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$WORK/password.html" | head -1)
  [[ -n $CSRF ]] || die "no csrf token on /password/"
  # A browser says where a form post comes from; a logged-in post that does not is refused.
  code=$(curl -s -o "$WORK/password-set.html" -w '%{http_code}' -H "Cookie: $COOKIE" -H "Origin: $URL" \
    --data-urlencode "csrf=$CSRF" --data-urlencode "new=$NEW_PASSWORD" \
    --data-urlencode "repeat=$NEW_PASSWORD" "$URL/password/") || die "POST /password/ failed"
  [[ $code == 200 ]] || die "choosing a new password on /password/ answered HTTP $code"
fi
code=$(curl -s -o "$WORK/information.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$URL/") \
  || die "GET / failed"
[[ $code == 200 ]] || die "GET / answered HTTP $code, not 200"
grep -qF "$CLIENT_NAME" "$WORK/information.html" || die "GET / does not show the client's name ($CLIENT_NAME)"
PAGE_BYTES=$(stat -c %s "$WORK/information.html")
IDLE_RSS_MB=$(calc "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status") / 1024" 1)

# ---------------------------------------------------------------------------------------------
# Requests/s, p99 in ms, and problems (errors, non-2xx/3xx) from a wrk --latency report.
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_p99_ms() {
  awk '$1 == "99%" {
         v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
         if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
         printf "%.2f", v }' "$1"
}
wrk_problems() {
  { grep -E 'Socket errors|Non-2xx' "$1" || true; } | sed 's/^ *//' | paste -sd ';' -
}
run_wrk() {
  local name=$1 path=$2 m0 s0 t0 m1 s1 t1 wall wrk_cpu=
  shift 2
  m0=$(machine_cpu_s); s0=$(process_cpu_s "$SERVER_PID"); t0=$(now_ns)
  local timer=()
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S' -o "$WORK/wrk-$name.cpu")
  "${timer[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$URL$path" \
    > "$WORK/wrk-$name.txt" 2>&1 || { cat "$WORK/wrk-$name.txt" >&2; die "wrk failed on $path"; }
  m1=$(machine_cpu_s); s1=$(process_cpu_s "$SERVER_PID"); t1=$(now_ns)
  [[ -n $(wrk_rps "$WORK/wrk-$name.txt") && -n $(wrk_p99_ms "$WORK/wrk-$name.txt") ]] \
    || { cat "$WORK/wrk-$name.txt" >&2; die "cannot read wrk's report for $path"; }
  # Where the machine's CPU went during the run, in CPUs busy on average: a busy "other" means
  # something else (a compiler, another benchmark) competed with the server.
  wall=$(calc "($t1 - $t0) / 1e9" 3)
  [[ -s $WORK/wrk-$name.cpu ]] && wrk_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ {print $1 + $2}' "$WORK/wrk-$name.cpu" | tail -1)
  if [[ -n $wrk_cpu ]]; then
    CPU_NOTE[$name]="server $(calc "($s1 - $s0) / $wall" 2), wrk $(calc "$wrk_cpu / $wall" 2), other processes $(calc "(($m1 - $m0) - ($s1 - $s0) - $wrk_cpu) / $wall" 2)"
  else
    CPU_NOTE[$name]="server $(calc "($s1 - $s0) / $wall" 2), wrk and other processes $(calc "(($m1 - $m0) - ($s1 - $s0)) / $wall" 2)"
  fi
}
declare -A CPU_NOTE=()

log "7/9 wrk -t$THREADS -c$CONNECTIONS -d$DURATION on /healthz"
run_wrk healthz /healthz
log "    wrk -t$THREADS -c$CONNECTIONS -d$DURATION on / (logged in)"
run_wrk information / -H "Cookie: $COOKIE"
# The page cache sends a page viewed again as it was rendered (core/src/web/page_cache.rs), so
# the run above mostly measures kept pages. For context, the same page at a new address each
# time (`/?r=<thread>-<n>`: the page ignores the query, the cache cannot match it) is rendered
# at every request, as a client's first view of a page is.
cat > "$WORK/fresh.lua" <<'LUA'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  return wrk.format(nil, "/?r=" .. tid .. "-" .. n)
end
LUA
log "    wrk -t$THREADS -c$CONNECTIONS -d$DURATION on /?r=... (logged in, a new address each time: rendered)"
run_wrk fresh / -H "Cookie: $COOKIE" -s "$WORK/fresh.lua"
log "    wrk -t$THREADS -c$CONNECTIONS -d$DURATION on /services/ and /invoicing/ (logged in)"
for tab in services invoicing; do
  code=$(curl -s -o "$WORK/$tab.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$URL/$tab/") \
    || die "GET /$tab/ failed"
  [[ $code == 200 ]] || die "GET /$tab/ answered HTTP $code, not 200"
  run_wrk "$tab" "/$tab/" -H "Cookie: $COOKIE"
done
S_RPS=$(wrk_rps "$WORK/wrk-services.txt");     S_P99=$(wrk_p99_ms "$WORK/wrk-services.txt")
V_RPS=$(wrk_rps "$WORK/wrk-invoicing.txt");    V_P99=$(wrk_p99_ms "$WORK/wrk-invoicing.txt")
H_RPS=$(wrk_rps "$WORK/wrk-healthz.txt");      H_P99=$(wrk_p99_ms "$WORK/wrk-healthz.txt")
I_RPS=$(wrk_rps "$WORK/wrk-information.txt");  I_P99=$(wrk_p99_ms "$WORK/wrk-information.txt")
H_PROBLEMS=$(wrk_problems "$WORK/wrk-healthz.txt")
I_PROBLEMS=$(wrk_problems "$WORK/wrk-information.txt")
F_RPS=$(wrk_rps "$WORK/wrk-fresh.txt");        F_P99=$(wrk_p99_ms "$WORK/wrk-fresh.txt")
F_RATIO=$(calc "$F_RPS / $H_RPS" 2)
F_PROBLEMS=$(wrk_problems "$WORK/wrk-fresh.txt")
RATIO=$(calc "$I_RPS / $H_RPS" 2)
S_RATIO=$(calc "$S_RPS / $H_RPS" 2)
V_RATIO=$(calc "$V_RPS / $H_RPS" 2)
TAB_PROBLEMS=$( { wrk_problems "$WORK/wrk-services.txt"; wrk_problems "$WORK/wrk-invoicing.txt"; } | paste -sd ';' -)

# ---------------------------------------------------------------------------------------------
log "8/9 reading the server's memory"
kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "the server died under load"; }
RSS_MB=$(calc "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status") / 1024" 1)
HWM_MB=$(calc "$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status") / 1024" 1)

log "9/9 stopping the server"
stop_server

# ---------------------------------------------------------------------------------------------
# The plugin benchmark, on its own server (demo data); its figures join the table below. A
# failure there does not lose the figures above: the table is printed and the exit status is 1.
declare -A PLG=()
PLUGINS_ERROR=
if [[ $PLUGINS == 1 ]]; then
  log "then: bench/plugins.sh (dynamic vs compiled-in plugin page, dynamic hook call)"
  if DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS KEEP=$KEEP STRICT=0 \
      RESULTS="$WORK/plugins.results" bench/plugins.sh > "$WORK/plugins.out"; then
    while IFS='=' read -r key value; do
      PLG[$key]=$value
    done < "$WORK/plugins.results"
  else
    PLUGINS_ERROR="bench/plugins.sh failed (exit status $?; its log is above)"
    log "$PLUGINS_ERROR"
  fi
fi

# ---------------------------------------------------------------------------------------------
verdict() { # verdict VALUE OP TARGET -> PASS or FAIL
  if is_true "$1 $2 $3"; then echo PASS; else echo FAIL; fi
}
row() { printf '%-26s %14s   %-10s %s\n' "$@"; }

v_import=$(verdict "$IMPORT_RPS" ">=" "$T_IMPORT_RPS")
v_cold=$(verdict "$COLD_MS" "<=" "$T_COLD_MS")
v_hp99=$(verdict "$H_P99" "<=" "$T_P99_MS")
v_ip99=$(verdict "$I_P99" "<=" "$T_P99_MS")
v_ratio=$(verdict "$RATIO" ">=" "$T_RATIO")
v_sratio=$(verdict "$S_RATIO" ">=" "$T_TAB_RATIO")
v_vratio=$(verdict "$V_RATIO" ">=" "$T_TAB_RATIO")
v_sp99=$(verdict "$S_P99" "<=" "$T_P99_MS")
v_vp99=$(verdict "$V_P99" "<=" "$T_P99_MS")
v_rss=$(verdict "$RSS_MB" "<=" "$T_RSS_MB")
v_hwm=$(verdict "$HWM_MB" "<=" "$T_RSS_MB")
VERDICTS=("$v_import" "$v_cold" "$v_hp99" "$v_ip99" "$v_ratio" "$v_sp99" "$v_sratio" "$v_vp99" "$v_vratio" "$v_rss" "$v_hwm")
if [[ $PLUGINS == 1 ]]; then
  if [[ -n $PLUGINS_ERROR ]]; then
    v_pratio=ERROR; v_hook=ERROR
  else
    v_pratio=$(verdict "${PLG[page_ratio]}" ">=" "${PLG[page_ratio_target]}")
    v_hook=$(verdict "${PLG[hook_us]}" "<=" "${PLG[hook_target_us]}")
  fi
  VERDICTS+=("$v_pratio" "$v_hook")
fi
CHECKED=${#VERDICTS[@]}
FAILED=0
for v in "${VERDICTS[@]}"; do
  if [[ $v != PASS ]]; then FAILED=$((FAILED + 1)); fi
done

echo
echo "Portico benchmark: $CLIENTS clients, $INVOICES invoices; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(nproc) CPUs"
echo
row "metric" "value" "target" "result"
row "------" "-----" "------" "------"
row "import records" "$RECORDS" "-" ""
row "import seconds" "$IMPORT_S" "-" ""
row "import records/s" "$IMPORT_RPS" ">= $T_IMPORT_RPS" "$v_import"
row "cold start ms" "$COLD_MS" "<= $T_COLD_MS" "$v_cold"
row "healthz req/s" "$H_RPS" "-" ""
row "healthz p99 ms" "$H_P99" "<= $T_P99_MS" "$v_hp99"
row "information req/s" "$I_RPS" "-" ""
row "information p99 ms" "$I_P99" "<= $T_P99_MS" "$v_ip99"
row "ratio information/healthz" "$RATIO" ">= $T_RATIO" "$v_ratio"
row "information rendered req/s" "$F_RPS" "-" ""
row "information rendered p99 ms" "$F_P99" "-" ""
row "ratio rendered/healthz" "$F_RATIO" "-" ""
row "services req/s" "$S_RPS" "-" ""
row "services p99 ms" "$S_P99" "<= $T_P99_MS" "$v_sp99"
row "ratio services/healthz" "$S_RATIO" ">= $T_TAB_RATIO" "$v_sratio"
row "invoicing req/s" "$V_RPS" "-" ""
row "invoicing p99 ms" "$V_P99" "<= $T_P99_MS" "$v_vp99"
row "ratio invoicing/healthz" "$V_RATIO" ">= $T_TAB_RATIO" "$v_vratio"
row "RSS MB" "$RSS_MB" "<= $T_RSS_MB" "$v_rss"
row "peak RSS MB" "$HWM_MB" "<= $T_RSS_MB" "$v_hwm"
if [[ $PLUGINS == 1 ]]; then
  row "plugin compiled-in req/s" "${PLG[native_rps]:--}" "-" ""
  row "plugin compiled-in p99 ms" "${PLG[native_p99_ms]:--}" "-" ""
  row "plugin dynamic req/s" "${PLG[dynamic_rps]:--}" "-" ""
  row "plugin dynamic p99 ms" "${PLG[dynamic_p99_ms]:--}" "-" ""
  row "ratio dynamic/compiled-in" "${PLG[page_ratio]:--}" ">= ${PLG[page_ratio_target]:-0.8}" "$v_pratio"
  row "dylib hook call mean us" "${PLG[hook_us]:--}" "<= ${PLG[hook_target_us]:-20}" "$v_hook"
fi
echo
echo "$((CHECKED - FAILED)) of $CHECKED targets met."
echo
echo "notes:"
echo "  bundle ${BUNDLE_MB} MiB; store on disk ${STORE_MB} MiB; import peak RSS ${IMPORT_PEAK_MB:-?} MiB"
echo "  portico import says: $FULL_OUT"
echo "  during the import: $FULL_CPU_NOTE"
if [[ -n $PHASE_LINE ]]; then echo "  $PHASE_LINE"; fi
echo "  server reports ready in ${SERVER_SAYS:-?} ms; RSS after login, before load ${IDLE_RSS_MB} MiB"
echo "  information page: $PAGE_BYTES bytes"
LOG_PLAIN=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/serve.log")
RELOADS=$(grep -ac 'theme reloaded' <<<"$LOG_PLAIN" || true)
LOG_ERRORS=$(grep -acE ' (ERROR|WARN) ' <<<"$LOG_PLAIN" || true)
echo "  server log: ${LOG_ERRORS} warning/error line(s), ${RELOADS} theme reload(s) while serving"
grep -aE ' (ERROR|WARN) ' <<<"$LOG_PLAIN" | head -3 | cut -c1-200 | sed 's/^/    /' || true
CACHE_LINE=$(grep -ao 'page cache: .*' <<<"$LOG_PLAIN" | tail -1 || true)
echo "  ${CACHE_LINE:-page cache: no summary in the server log}"
echo "  CPUs busy during wrk /healthz: ${CPU_NOTE[healthz]}; during wrk /: ${CPU_NOTE[information]} (of $(nproc))"
if [[ -n $H_PROBLEMS ]]; then echo "  wrk /healthz: $H_PROBLEMS"; fi
if [[ -n $I_PROBLEMS ]]; then echo "  wrk /: $I_PROBLEMS"; fi
if [[ -n $F_PROBLEMS ]]; then echo "  wrk /?r=...: $F_PROBLEMS"; fi
if [[ -n $TAB_PROBLEMS ]]; then echo "  wrk /services/, /invoicing/: $TAB_PROBLEMS"; fi
echo "  MB = MiB (2^20 bytes); p99 from wrk --latency; cold start = launch until /healthz answers"
if [[ $PLUGINS == 1 ]]; then
  if [[ -n $PLUGINS_ERROR ]]; then
    echo "  plugins: $PLUGINS_ERROR"
  else
    echo "  plugins: /outage-native/ (compiled in) vs /outage-notice/ (examples/outage-notice, dynamic) on the"
    echo "  demo data; hook = before_login through the dynamic boundary, worse of plain thread and tokio"
    echo "  worker (p99 ${PLG[hook_plain_p99_us]} / ${PLG[hook_tokio_p99_us]} us)"
    if [[ -n ${PLG[page_problems]:-} ]]; then echo "  wrk plugin pages: ${PLG[page_problems]}"; fi
    echo "  bench/plugins.sh's own table and notes:"
    sed 's/^/    /' "$WORK/plugins.out"
  fi
fi

if [[ -n $PLUGINS_ERROR ]]; then
  exit 1
fi
if [[ $STRICT == 1 && $FAILED -gt 0 ]]; then
  exit 2
fi
exit 0
