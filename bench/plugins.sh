#!/usr/bin/env bash
# Portico plugin benchmark: the same page served by the dynamic example plugin
# (examples/outage-notice, loaded with --plugin-dir) and compiled in (`outage-native`,
# src/bench_plugin.rs, `--features bench-plugins`), and the latency of a trivial hook call
# through the dynamic boundary (cargo bench -p portico-core --bench dylib_hook). See
# bench/README.md.
#
# Usage (from the repository root):   bench/plugins.sh       (bench/run.sh runs it too)
# Options (environment):
#   DURATION=15s CONNECTIONS=64 THREADS=2   wrk run length, connections, threads (per page)
#   ROUNDS=1                  wrk runs per page, alternating compiled-in and dynamic; req/s is
#                             the mean over the rounds, p99 the worst
#   WARMUP_WRK=3s             untimed wrk run on each page before the rounds
#   N=20000 WARMUP=2000       timed and warm-up hook calls
#   PAGES=1 HOOK=1            0 skips the page runs / the hook benchmark
#   PORT=                     port to serve on (default: a free one)
#   KEEP=0                    1 keeps the temp folder (data, plugin folder, logs, wrk output)
#   STRICT=0                  1 exits with status 2 when a target fails
#   RESULTS=                  also write the figures as KEY=VALUE lines to this file (run.sh)
# Exit status: 0 when the benchmark ran (whatever the targets say), 1 on a real error.
set -euo pipefail

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
N=${N:-20000}
WARMUP=${WARMUP:-2000}
WARMUP_WRK=${WARMUP_WRK:-3s}
PAGES=${PAGES:-1}
HOOK=${HOOK:-1}
PORT=${PORT:-}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
RESULTS=${RESULTS:-}

# Targets (issue "Dynamic plugins").
T_PAGE_RATIO=0.8   # dynamic page req/s ÷ the same page compiled in, at least
T_HOOK_US=20       # a trivial hook call through the dynamic boundary, mean µs, at most

LOGIN=alice                 # demo login (core/src/demo.rs)
PASSWORD=alice-demo-pass
CLIENT_NAME="Alice Nováková"
# Nothing Tera escapes in HTML (& < > " ' /), so the page shows it byte for byte.
NOTICE_TEXT="Fibre cut in Brno-Líšeň: no Internet since 08:40, repair expected by 14:00. We are sorry."
NATIVE_PATH=/outage-native/
DYNAMIC_PATH=/outage-notice/

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Where cargo puts its builds (CARGO_TARGET_DIR, else ./target).
TARGET_DIR=${CARGO_TARGET_DIR:-target}

die() { echo "bench/plugins: error: $*" >&2; exit 1; }
log() { echo "bench/plugins: $*" >&2; }
now_ns() { date +%s%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
is_true() { awk "BEGIN { exit !($1) }"; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
machine_cpu_s() { awk -v t="$CLK_TCK" '/^cpu / {printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / t}' /proc/stat; }
process_cpu_s() { awk -v t="$CLK_TCK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }

for tool in cargo curl awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [[ $PAGES == 1 ]]; then
  command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
fi
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive whole number"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number"
(( THREADS <= CONNECTIONS )) || THREADS=$CONNECTIONS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench-plugins.XXXXXX")
DATA=$WORK/data
PLUGINS=$WORK/plugins
BIN=$WORK/portico
SERVER_PID=

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
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
log "1/6 building: portico --features bench-plugins, the outage-notice library, the dylib_hook bench"
cargo build --release -p portico --bin portico --features bench-plugins >&2 \
  || die "building portico with --features bench-plugins failed"
cargo build --release -p outage-notice >&2 || die "building examples/outage-notice failed"
if [[ $HOOK == 1 ]]; then
  # `cargo bench -p portico-core --bench dylib_hook`, built now and run in step 6 from a copy.
  cargo bench -p portico-core --bench dylib_hook --no-run \
    --message-format=json-render-diagnostics > "$WORK/bench-build.json" \
    || die "building the dylib_hook bench failed"
  BENCH_EXE=$(sed -n 's/.*"executable":"\([^"]*\/dylib_hook-[^"]*\)".*/\1/p' "$WORK/bench-build.json" | tail -1)
  [[ -n $BENCH_EXE && -x $BENCH_EXE ]] || die "cannot find the dylib_hook bench executable"
  cp "$BENCH_EXE" "$WORK/dylib_hook"
fi
# Copies, so a build running beside the benchmark cannot swap them mid-run.
cp "$TARGET_DIR"/release/portico "$BIN"
mkdir -p "$PLUGINS"
cp "$TARGET_DIR"/release/liboutage_notice.so "$PLUGINS/"
# The loader refuses a folder or library writable by group or others.
chmod 0755 "$PLUGINS" "$PLUGINS/liboutage_notice.so"

# ---------------------------------------------------------------------------------------------
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

declare -A RPS_SUM=() P99_MAX=() PROBLEMS=() CPU_NOTE=() PAGE_BYTES=() SERVER_THREADS=() CPU_PER_REQ=()
if [[ $PAGES == 1 ]]; then
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

  log "2/6 starting the demo portal on $URL with --plugin-dir $PLUGINS"
  "$BIN" demo --data "$DATA" --bind "127.0.0.1:$PORT" --themes themes --plugin-dir "$PLUGINS" \
    > "$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  deadline=$(( $(now_ns) + 60 * 1000000000 ))
  until curl -sf -o /dev/null --max-time 1 "$URL/healthz"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "the server exited during start-up"; }
    (( $(now_ns) < deadline )) || { cat "$WORK/serve.log" >&2; die "the server was not ready within 60 s"; }
    sleep 0.05
  done
  LOG_PLAIN=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/serve.log")
  grep -q 'dynamic plugin loaded' <<<"$LOG_PLAIN" \
    || { cat "$WORK/serve.log" >&2; die "the server did not load the outage-notice library"; }

  log "3/6 setting outage_notice_text and outage_native_text (through the running portal)"
  for key in outage_notice_text outage_native_text; do
    "$BIN" settings set "$key" "$NOTICE_TEXT" --data "$DATA" > "$WORK/settings-$key.out" 2>&1 \
      || { cat "$WORK/settings-$key.out" >&2; die "portico settings set $key failed"; }
  done

  log "4/6 logging in as $LOGIN and checking both pages"
  code=$(curl -s -o "$WORK/sign.html" -D "$WORK/sign.headers" -w '%{http_code}' \
    --data-urlencode "username=$LOGIN" --data-urlencode "password=$PASSWORD" "$URL/sign/") \
    || die "the login request failed"
  COOKIE=$(tr -d '\r' < "$WORK/sign.headers" \
    | sed -n 's/^set-cookie: *\(\(__Host-\)\{0,1\}portico_session=[^;]*\).*/\1/Ip' | head -1)
  LOCATION=$(tr -d '\r' < "$WORK/sign.headers" | sed -n 's/^location: *//Ip' | head -1)
  [[ $code == 303 && -n $COOKIE ]] \
    || { cat "$WORK/sign.headers" >&2; die "the login answered HTTP $code without a session cookie"; }
  [[ $LOCATION != /password* ]] || die "the demo login leads to /password/ (one-time password?)"
  for path in "$NATIVE_PATH" "$DYNAMIC_PATH"; do
    name=${path//\//}
    code=$(curl -s -o "$WORK/$name.html" -w '%{http_code}' -H "Cookie: $COOKIE" "$URL$path") \
      || die "GET $path failed"
    [[ $code == 200 ]] || die "GET $path answered HTTP $code, not 200 (a wrk run on it would measure nothing)"
    grep -qF "$NOTICE_TEXT" "$WORK/$name.html" || die "GET $path does not show the notice text"
    grep -qF "$CLIENT_NAME" "$WORK/$name.html" || die "GET $path does not show the client's name"
    PAGE_BYTES[$name]=$(stat -c %s "$WORK/$name.html")
  done

  run_wrk() { # run_wrk NAME PATH ROUND
    local name=$1 path=$2 round=$3 out m0 s0 t0 m1 s1 t1 wall wrk_cpu= rps p99
    out=$WORK/wrk-$name-$round.txt
    local timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S' -o "$out.cpu")
    m0=$(machine_cpu_s); s0=$(process_cpu_s "$SERVER_PID"); t0=$(now_ns)
    "${timer[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
      -H "Cookie: $COOKIE" "$URL$path" > "$out" 2>&1 \
      || { cat "$out" >&2; die "wrk failed on $path"; }
    m1=$(machine_cpu_s); s1=$(process_cpu_s "$SERVER_PID"); t1=$(now_ns)
    SERVER_THREADS[$name]=$(awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status")
    rps=$(wrk_rps "$out"); p99=$(wrk_p99_ms "$out")
    [[ -n $rps && -n $p99 ]] || { cat "$out" >&2; die "cannot read wrk's report for $path"; }
    RPS_SUM[$name]=$(calc "${RPS_SUM[$name]:-0} + $rps" 2)
    if [[ -z ${P99_MAX[$name]:-} ]] || is_true "$p99 > ${P99_MAX[$name]}"; then P99_MAX[$name]=$p99; fi
    local problems
    problems=$(wrk_problems "$out")
    [[ -z $problems ]] || PROBLEMS[$name]="${PROBLEMS[$name]:+${PROBLEMS[$name]}; }round $round: $problems"
    wall=$(calc "($t1 - $t0) / 1e9" 3)
    CPU_PER_REQ[$name]=$(calc "($s1 - $s0) / ($rps * $wall) * 1e6" 0)
    [[ -s $out.cpu ]] && wrk_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ {print $1 + $2}' "$out.cpu" | tail -1)
    if [[ -n $wrk_cpu ]]; then
      CPU_NOTE[$name]="server $(calc "($s1 - $s0) / $wall" 2), wrk $(calc "$wrk_cpu / $wall" 2), other processes $(calc "(($m1 - $m0) - ($s1 - $s0) - $wrk_cpu) / $wall" 2)"
    else
      CPU_NOTE[$name]="server $(calc "($s1 - $s0) / $wall" 2), wrk and other processes $(calc "(($m1 - $m0) - ($s1 - $s0)) / $wall" 2)"
    fi
    log "    $path round $round: $rps req/s, p99 $p99 ms"
  }

  log "5/6 wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $NATIVE_PATH and $DYNAMIC_PATH ($ROUNDS round(s), logged in)"
  # Warm both pages up first (thread pools, allocator arenas), untimed.
  for path in "$NATIVE_PATH" "$DYNAMIC_PATH"; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP_WRK" -H "Cookie: $COOKIE" "$URL$path" >/dev/null 2>&1 \
      || die "wrk warm-up failed on $path"
  done
  for round in $(seq "$ROUNDS"); do
    run_wrk native "$NATIVE_PATH" "$round"
    run_wrk dynamic "$DYNAMIC_PATH" "$round"
  done
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "the server died under load"; }
  # The pages must still be what was measured (a plugin disabled after failures answers 404).
  for path in "$NATIVE_PATH" "$DYNAMIC_PATH"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$URL$path") || die "GET $path failed"
    [[ $code == 200 ]] || die "after the load GET $path answers HTTP $code"
  done
  LOG_PLAIN=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/serve.log")
  LOG_ERRORS=$(grep -acE ' (ERROR|WARN) ' <<<"$LOG_PLAIN" || true)
  PLUGIN_FAILURES=$(grep -ac 'plugin call failed' <<<"$LOG_PLAIN" || true)
  stop_server
  N_RPS=$(calc "${RPS_SUM[native]} / $ROUNDS" 0);  N_P99=${P99_MAX[native]}
  D_RPS=$(calc "${RPS_SUM[dynamic]} / $ROUNDS" 0); D_P99=${P99_MAX[dynamic]}
  PAGE_RATIO=$(calc "${RPS_SUM[dynamic]} / ${RPS_SUM[native]}" 2)
fi

# ---------------------------------------------------------------------------------------------
declare -A HK=()
if [[ $HOOK == 1 ]]; then
  log "6/6 the dylib_hook bench (cargo bench -p portico-core --bench dylib_hook; N=$N)"
  (cd core && PORTICO_BENCH_PLUGIN=$PLUGINS/liboutage_notice.so N=$N WARMUP=$WARMUP \
    "$WORK/dylib_hook" --bench) > "$WORK/dylib_hook.txt" 2> "$WORK/dylib_hook.err" \
    || { cat "$WORK/dylib_hook.err" "$WORK/dylib_hook.txt" >&2; die "the dylib_hook bench failed"; }
  # "result KEY mean=.. p50=.. p99=.. max=.." -> HK[KEY_mean] ...
  while read -r _ key rest; do
    for kv in $rest; do HK[${key}_${kv%%=*}]=${kv#*=}; done
  done < <(grep '^result ' "$WORK/dylib_hook.txt")
  [[ -n ${HK[hook_tokio_mean]:-} && -n ${HK[hook_plain_mean]:-} ]] \
    || { cat "$WORK/dylib_hook.txt" >&2; die "cannot read the dylib_hook report"; }
  # The worse of the two places a hook runs: a plain thread, a tokio worker (the server's).
  HOOK_US=$(awk -v a="${HK[hook_plain_mean]}" -v b="${HK[hook_tokio_mean]}" 'BEGIN { printf "%.2f", (a > b ? a : b) }')
fi

# ---------------------------------------------------------------------------------------------
verdict() { if is_true "$1 $2 $3"; then echo PASS; else echo FAIL; fi; }
row() { printf '%-34s %15s   %-10s %s\n' "$@"; }
CHECKED=0
FAILED=0
count() { CHECKED=$((CHECKED + 1)); if [[ $1 == FAIL ]]; then FAILED=$((FAILED + 1)); fi; }

{
  echo "Portico plugin benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS round(s); hook calls N=$N; $(nproc) CPUs"
  echo
  row "metric" "value" "target" "result"
  row "------" "-----" "------" "------"
  if [[ $PAGES == 1 ]]; then
    v_ratio=$(verdict "$PAGE_RATIO" ">=" "$T_PAGE_RATIO"); count "$v_ratio"
    row "compiled-in page req/s" "$N_RPS" "-" ""
    row "compiled-in page p99 ms" "$N_P99" "-" ""
    row "dynamic page req/s" "$D_RPS" "-" ""
    row "dynamic page p99 ms" "$D_P99" "-" ""
    row "ratio dynamic/compiled-in" "$PAGE_RATIO" ">= $T_PAGE_RATIO" "$v_ratio"
  fi
  if [[ $HOOK == 1 ]]; then
    v_hook=$(verdict "$HOOK_US" "<=" "$T_HOOK_US"); count "$v_hook"
    row "dylib hook call mean us (worse)" "$HOOK_US" "<= $T_HOOK_US" "$v_hook"
    row "  plain thread mean / p99 us" "${HK[hook_plain_mean]} / ${HK[hook_plain_p99]}" "-" ""
    row "  tokio worker mean / p99 us" "${HK[hook_tokio_mean]} / ${HK[hook_tokio_p99]}" "-" ""
    row "Hooks::run to dylib mean us" "${HK[run_tokio_mean]}" "-" ""
    row "Hooks::run to no-op mean us" "${HK[run_native_mean]}" "-" ""
  fi
  echo
  echo "$((CHECKED - FAILED)) of $CHECKED targets met."
  echo
  echo "notes:"
  if [[ $PAGES == 1 ]]; then
    echo "  pages: $NATIVE_PATH (outage-native, compiled in, --features bench-plugins) and $DYNAMIC_PATH"
    echo "  (examples/outage-notice loaded from --plugin-dir), demo data, logged in as $LOGIN; both checked 200 with the notice"
    echo "  before and after the load; page sizes ${PAGE_BYTES[outage-native]} and ${PAGE_BYTES[outage-notice]} bytes"
    echo "  CPUs busy during wrk $NATIVE_PATH: ${CPU_NOTE[native]}; $DYNAMIC_PATH: ${CPU_NOTE[dynamic]} (of $(nproc); last round)"
    echo "  server CPU per request: $NATIVE_PATH ${CPU_PER_REQ[native]} µs, $DYNAMIC_PATH ${CPU_PER_REQ[dynamic]} µs (last round)"
    echo "  server threads after wrk $NATIVE_PATH: ${SERVER_THREADS[native]}; after $DYNAMIC_PATH: ${SERVER_THREADS[dynamic]} (last round)"
    echo "  server log: ${LOG_ERRORS} warning/error line(s), ${PLUGIN_FAILURES} failed plugin call(s)"
    if [[ -n ${PROBLEMS[native]:-} ]]; then echo "  wrk $NATIVE_PATH: ${PROBLEMS[native]}"; fi
    if [[ -n ${PROBLEMS[dynamic]:-} ]]; then echo "  wrk $DYNAMIC_PATH: ${PROBLEMS[dynamic]}"; fi
  fi
  if [[ $HOOK == 1 ]]; then
    echo "  hook: before_login to outage-notice with outage_notice_block_logins off; the bench's own table:"
    grep -v '^result ' "$WORK/dylib_hook.txt" | sed 's/^/    /'
  fi
}

if [[ -n $RESULTS ]]; then
  {
    if [[ $PAGES == 1 ]]; then
      echo "native_rps=$N_RPS"; echo "native_p99_ms=$N_P99"
      echo "dynamic_rps=$D_RPS"; echo "dynamic_p99_ms=$D_P99"
      echo "page_ratio=$PAGE_RATIO"; echo "page_ratio_target=$T_PAGE_RATIO"
      echo "page_problems=${PROBLEMS[native]:-}${PROBLEMS[native]:+${PROBLEMS[dynamic]:+; }}${PROBLEMS[dynamic]:-}"
    fi
    if [[ $HOOK == 1 ]]; then
      echo "hook_us=$HOOK_US"; echo "hook_target_us=$T_HOOK_US"
      echo "hook_plain_p99_us=${HK[hook_plain_p99]}"; echo "hook_tokio_p99_us=${HK[hook_tokio_p99]}"
    fi
  } > "$RESULTS"
fi

if [[ $STRICT == 1 && $FAILED -gt 0 ]]; then
  exit 2
fi
exit 0
