#!/usr/bin/env bash
# Runs the staged app under the real Functions host (`func start`), with local.settings.json.
#
# usage: deploy/start.sh [APPDIR] [--settings FILE] [-- FUNC-START-ARGUMENTS...]
#   APPDIR     the folder make app staged (default app)
#   --settings the settings to run with (default: local.settings.json at the repository root)
#
# func start runs the Functions host on this machine against real Azure services (IoT Hub, and
# the storage account and SignalR Service named in the settings). To run everything on this
# machine with no Azure account and no Core Tools, use make run instead.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
appdir=app
settings=$root/local.settings.json
func_args=()
positional=0
while (($#)); do
  case $1 in
    --settings) (($# > 1)) || { echo "start: --settings needs a file" >&2; exit 2; }; settings=$2; shift 2 ;;
    --settings=*) settings=${1#*=}; shift ;;
    --) shift; func_args=("$@"); break ;;
    -h | --help) sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "start: unknown option $1 (func start's own options go after --)" >&2; exit 2 ;;
    *)
      ((positional == 0)) || { echo "start: one app folder only" >&2; exit 2; }
      appdir=$1; positional=1; shift ;;
  esac
done

if ! command -v func >/dev/null; then
  cat >&2 <<'EOF'
start: Azure Functions Core Tools (the `func` command, version 4) is not installed.

  make start runs the staged app under the real Functions host, which Core Tools provides.
  To install it, see https://learn.microsoft.com/azure/azure-functions/functions-run-local
  (on Debian/Ubuntu: Microsoft's apt repository, package azure-functions-core-tools-4; or
  npm install --global azure-functions-core-tools@4). Then run make start again.

  To run the whole system on this machine without anything from Azure (no account, no Core
  Tools: Azurite, the SignalR stand-in, the handler, the simulator and the dashboard), use:

      make run
EOF
  exit 1
fi

if [[ ! -f $appdir/host.json || ! -x $appdir/enviromon-handler ]]; then
  echo "start: $appdir is not a staged app folder: run make app (make start does it for you)" >&2
  exit 1
fi

if [[ ! -f $settings ]]; then
  cat >&2 <<EOF
start: $settings does not exist.

  func start reads the app's settings from local.settings.json. Make yours from the sample:

      cp local.settings.sample.json local.settings.json

  and fill in the connection strings (IoTHubConnectionString: the IoT Hub's Event
  Hubs-compatible endpoint; StorageConnectionString and AzureWebJobsStorage; and
  AzureSignalRConnectionString). deploy/README.md shows where each one comes from.
  local.settings.json is ignored by git: it holds secrets and never leaves this machine.
EOF
  exit 1
fi

install -m 0600 "$settings" "$appdir/local.settings.json"
cd "$appdir"
echo "start: func start in $appdir/ with $settings" >&2
exec func start "${func_args[@]}"
