#!/usr/bin/env bash
# make run: the whole system live on this machine, no Azure account needed. Builds the dashboard,
# starts Azurite (Table Storage), the SignalR Service stand-in, the handler (which also serves the
# dashboard) and the device simulator, prints the URL to open, and on Ctrl-C stops everything it
# started. `make run` builds the binaries first; run this directly only after `make`.
#
# Settings (environment):
#   ENVIROMON_PORT       7071   handler: the dashboard and the API (http://127.0.0.1:PORT/)
#   AZURITE_TABLE_PORT   10002  Azurite's Table service
#   SIGNALR_PORT         8888   SignalR Service stand-in
#   SIM_DEVICES          6      simulated devices (0: no simulator)
#   SIM_INTERVAL_MS      2000   each device sends every this many ms
#   SIM_BAD_FRACTION     0.02   share of out-of-range or malformed readings
#   SIM_ARGS                    more simulator options, e.g. "--rate 50 --partitions 2"
#   SIM_BACKFILL_S       3600   on a fresh start (else 0): seconds of past readings sent first
#   ENVIROMON_RUN_DIR    .run   Azurite's data, the built dashboard, logs
#   ENVIROMON_BUILD      build  where the handler and stand-in binaries are
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ENVIROMON_PORT=${ENVIROMON_PORT:-7071}
AZURITE_TABLE_PORT=${AZURITE_TABLE_PORT:-10002}
SIGNALR_PORT=${SIGNALR_PORT:-8888}
SIM_DEVICES=${SIM_DEVICES:-6}
SIM_INTERVAL_MS=${SIM_INTERVAL_MS:-2000}
SIM_BAD_FRACTION=${SIM_BAD_FRACTION:-0.02}
SIM_ARGS=${SIM_ARGS:-}
RUN_DIR=${ENVIROMON_RUN_DIR:-.run}
BUILD=${ENVIROMON_BUILD:-build}
case $RUN_DIR in /*) ;; *) RUN_DIR=$ROOT/$RUN_DIR ;; esac
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
LOGS=$RUN_DIR/logs
HANDLER_BIN=$BUILD/enviromon-handler
STANDIN_BIN=$BUILD/signalr-standin
AZURITE_BIN=$ROOT/node_modules/.bin/azurite-table
# The emulator's well-known development key (public; the same in every Azurite).
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

say() { printf 'run-local: %s\n' "$*"; }
die() { printf 'run-local: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- checks before starting anything
for setting in ENVIROMON_PORT AZURITE_TABLE_PORT SIGNALR_PORT; do
  value=${!setting}
  if ! [[ $value =~ ^[0-9]+$ ]] || (( value < 1 || value > 65535 )); then
    die "$setting=$value is not a port number (1-65535)"
  fi
done
[[ $SIM_DEVICES =~ ^[0-9]+$ ]] || die "SIM_DEVICES=$SIM_DEVICES is not a number"
if [[ $ENVIROMON_PORT == "$AZURITE_TABLE_PORT" || $ENVIROMON_PORT == "$SIGNALR_PORT" || $AZURITE_TABLE_PORT == "$SIGNALR_PORT" ]]; then
  die "ENVIROMON_PORT, AZURITE_TABLE_PORT and SIGNALR_PORT must differ ($ENVIROMON_PORT, $AZURITE_TABLE_PORT, $SIGNALR_PORT)"
fi
command -v node >/dev/null || die "node is missing: run 'make deps'"

# One check for all three ports: can we listen on 127.0.0.1:PORT right now?
node - "ENVIROMON_PORT=$ENVIROMON_PORT" "AZURITE_TABLE_PORT=$AZURITE_TABLE_PORT" "SIGNALR_PORT=$SIGNALR_PORT" <<'EOF' || exit 1
const net = require('node:net');
const check = (name, port) => new Promise((resolve) => {
  const srv = net.createServer();
  srv.once('error', (err) => resolve({ name, port, err }));
  srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(null)));
});
(async () => {
  const busy = (await Promise.all(process.argv.slice(2).map((a) => check(...a.split('='))))).filter(Boolean);
  for (const b of busy) {
    const why = b.err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${b.err.code})`;
    console.error(`run-local: port ${b.port} ${why}; choose another with ${b.name}=<port> make run`);
  }
  process.exit(busy.length ? 1 : 0);
})();
EOF

[[ -x $AZURITE_BIN ]] || die "Azurite is missing ($AZURITE_BIN): run 'make deps'"
[[ -x $HANDLER_BIN ]] || die "the handler is not built ($HANDLER_BIN): run 'make run' or 'make' first"
[[ -x $STANDIN_BIN ]] || die "the SignalR stand-in is not built ($STANDIN_BIN): run 'make run' or 'make' first"

# A fresh start (no Azurite data yet): the simulator first sends the last hour of readings, with
# past enqueued times, through the handler, so the first page already has full charts.
fresh=0
[[ -d $RUN_DIR/azurite && -n $(ls -A "$RUN_DIR/azurite" 2>/dev/null) ]] || fresh=1
SIM_BACKFILL_S=${SIM_BACKFILL_S:-$(( fresh ? 3600 : 0 ))}
[[ $SIM_BACKFILL_S =~ ^[0-9]+$ ]] || die "SIM_BACKFILL_S=$SIM_BACKFILL_S is not a number"
mkdir -p "$RUN_DIR/azurite" "$LOGS"

# ---------------------------------------------------------------- process bookkeeping
pids=()
names=()
stopping=0

alive() { # a child that exited but is not reaped yet is a zombie: not alive
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

stop_all() {
  (( stopping )) && return 0
  stopping=1
  trap '' INT TERM
  local i pid n
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do # the reverse of the start order
    pid=${pids[i]}
    alive "$pid" || { wait "$pid" 2>/dev/null || true; continue; }
    kill -TERM "$pid" 2>/dev/null || true
    for (( n = 0; n < 100; n++ )); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      say "${names[i]} did not stop within 5 s after SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$RUN_DIR/pids"
  (( ${#pids[@]} )) && say "stopped"
  return 0
}

trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

start() { # start NAME LOGFILE|- COMMAND...: in the background, in this process group
  local name=$1 log=$2
  shift 2
  if [[ $log == - ]]; then "$@" & else "$@" >"$log" 2>&1 & fi
  pids+=("$!")
  names+=("$name")
  printf '%s %s\n' "$name" "$!" >>"$RUN_DIR/pids"
}

show_log() {
  local log=$LOGS/$1.log
  [[ -s $log ]] || return 0
  printf -- '--- last lines of %s:\n' "${log#"$ROOT"/}" >&2
  tail -n 25 "$log" >&2
}

wait_port() { # wait_port NAME PORT PID SECONDS
  local name=$1 port=$2 pid=$3 limit=$(( SECONDS + $4 ))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! alive "$pid"; then
      show_log "$name"
      die "$name exited before it listened on port $port"
    fi
    if (( SECONDS >= limit )); then
      show_log "$name"
      die "$name is not listening on port $port after $4 s"
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- start
: >"$RUN_DIR/pids"
node dashboard/build.mjs --out "$RUN_DIR/dashboard" >/dev/null

access_key=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex"))')
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;TableEndpoint=http://127.0.0.1:$AZURITE_TABLE_PORT/devstoreaccount1;"
signalr="Endpoint=http://127.0.0.1;Port=$SIGNALR_PORT;AccessKey=$access_key;Version=1.0;"

start azurite "$LOGS/azurite.log" "$AZURITE_BIN" --tableHost 127.0.0.1 --tablePort "$AZURITE_TABLE_PORT" \
  --location "$RUN_DIR/azurite" --silent --disableTelemetry --skipApiVersionCheck
# The connection strings go in the environment, so the per-run key does not show in ps.
start signalr-standin "$LOGS/signalr-standin.log" env AzureSignalRConnectionString="$signalr" "$STANDIN_BIN"
wait_port signalr-standin "$SIGNALR_PORT" "${pids[1]}" 15
wait_port azurite "$AZURITE_TABLE_PORT" "${pids[0]}" 40

start handler "$LOGS/handler.log" env \
  FUNCTIONS_CUSTOMHANDLER_PORT="$ENVIROMON_PORT" \
  StorageConnectionString="$storage" \
  AzureSignalRConnectionString="$signalr" \
  EnviromonDashboardDir="$RUN_DIR/dashboard" \
  "$HANDLER_BIN"
wait_port handler "$ENVIROMON_PORT" "${pids[2]}" 20

if (( SIM_DEVICES > 0 )); then
  # shellcheck disable=SC2086 # SIM_ARGS is a list of options
  start simulator - node tools/simulator.mjs --url "http://127.0.0.1:$ENVIROMON_PORT" \
    --devices "$SIM_DEVICES" --interval-ms "$SIM_INTERVAL_MS" --bad-fraction "$SIM_BAD_FRACTION" \
    --summary-ms 30000 --backfill "$SIM_BACKFILL_S" $SIM_ARGS
fi

url="http://127.0.0.1:$ENVIROMON_PORT/"
cat <<EOF

  Enviromon is running. Open $url

  Table Storage   Azurite on 127.0.0.1:$AZURITE_TABLE_PORT (data kept in ${RUN_DIR#"$ROOT"/}/azurite)
  SignalR         stand-in on 127.0.0.1:$SIGNALR_PORT
  Devices         $SIM_DEVICES simulated, a reading every $SIM_INTERVAL_MS ms each
  Logs            ${LOGS#"$ROOT"/}/ (handler.log, signalr-standin.log, azurite.log)
  Press Ctrl-C to stop everything.

EOF

# ---------------------------------------------------------------- supervise
# Returns when a child exits (something went wrong) or a signal runs the traps above.
while :; do
  dead=
  set +e
  wait -n -p dead "${pids[@]}"
  rc=$?
  set -e
  if [[ -z $dead ]]; then
    (( rc != 127 )) || die "lost track of the processes it started"
    continue
  fi
  for i in "${!pids[@]}"; do
    [[ ${pids[i]} == "$dead" ]] || continue
    say "${names[i]} exited (status $rc); stopping everything"
    [[ ${names[i]} == simulator ]] || show_log "${names[i]}"
  done
  exit 1
done
