#!/usr/bin/env bash
# Deploys Enviromon to Azure with the Azure CLI, or deletes what it deployed.
#
#   deploy/deploy.sh [options]             create or update everything, then print the dashboard
#                                          URL and a device connection string
#   deploy/deploy.sh teardown [options]    delete the resource group and everything in it
#
# Idempotent: every resource is looked up (show) before it is created, and every setting is
# compared before it is changed, so a second run creates and changes nothing. Secrets (keys,
# connection strings) never appear on a command line or in the output, and are never written
# into the repository; the one exception is the device connection string printed at the end.
# deploy/README.md explains the whole thing; --help lists the options.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
  cat <<'EOF'
usage: deploy/deploy.sh [deploy|teardown] [options]

Deploy (default):
  --name-prefix P          prefix of every resource name (default enviromon; lowercase letters,
                           digits, hyphens)
  --suffix S               suffix that makes the names globally unique (default: 6 hex digits
                           derived from the subscription id and the resource group)
  --location L             Azure region (default eastus)
  --resource-group G       resource group (default <prefix>-rg)
  --signalr-sku SKU        Azure SignalR Service tier: Free_F1 (default), Standard_S1, Premium_P1
  --iothub-sku SKU         IoT Hub tier: F1 (default, free, one per subscription), B1, S1, ...
  --iothub-partitions N    device-to-cloud partitions (default 2, the only value F1 allows)
  --plan-sku SKU           Consumption (default: Linux Consumption plan), or an App Service /
                           Premium plan SKU such as B1 or EP1 (a plan <prefix>-<suffix>-plan)
  --app-insights           let the Function App create Application Insights (off by default)
  --device-id ID           the device identity to create (default enviromon-device-1)
  --consumer-group NAME    Event Hubs consumer group the app reads with (default enviromon;
                           $Default uses the built-in one)
  --partition-key KEY      PartitionKey setting of the app (default Sydney)
  --publish MODE           func (Azure Functions Core Tools), zip (az zip deploy), or auto
                           (default: func when it is installed, else zip)
  --app-dir DIR            an already staged app folder to publish (default: run make app and
                           publish app/)
  --dashboard-src DIR      dashboard sources holding build.mjs (default dashboard/)
  --dashboard-out DIR      where the dashboard is built (default build/dashboard)

Teardown:
  --resource-group G / --name-prefix P   which group to delete (default <prefix>-rg)
  --yes                    do not ask for confirmation
  --no-wait                return at once; Azure goes on deleting in the background

Both:
  --dry-run                print every command, run none
  -h, --help               this text
EOF
}

die() { printf 'deploy: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*" >&3; }

# fd 3 is the terminal's stdout: commands are echoed there even from inside $(...).
exec 3>&1

action=deploy
prefix=enviromon
suffix=
location=eastus
resource_group=
signalr_sku=Free_F1
iothub_sku=F1
iothub_partitions=2
plan_sku=Consumption
app_insights=0
device_id=enviromon-device-1
consumer_group=enviromon
partition_key=Sydney
publish=auto
app_dir=
dashboard_src=$root/dashboard
dashboard_out=$root/build/dashboard
dry_run=0
assume_yes=0
no_wait=0

case ${1:-} in
  deploy | teardown) action=$1; shift ;;
esac
while (($#)); do
  opt=$1
  shift
  value=
  has_value=0
  if [[ $opt == --*=* ]]; then
    value=${opt#*=}
    opt=${opt%%=*}
    has_value=1
  fi
  case $opt in
    --dry-run | --yes | -y | --no-wait | --app-insights | -h | --help)
      ((has_value == 0)) || die "$opt takes no value" ;;
    --name-prefix | --suffix | --location | --resource-group | --signalr-sku | --iothub-sku | \
      --iothub-partitions | --plan-sku | --device-id | --consumer-group | --partition-key | \
      --publish | --app-dir | --dashboard-src | --dashboard-out)
      if ((has_value == 0)); then
        (($# > 0)) || die "$opt needs a value"
        value=$1
        shift
      fi ;;
    *) usage >&2; die "unknown argument: $opt" ;;
  esac
  case $opt in
    --name-prefix) prefix=$value ;;
    --suffix) suffix=$value ;;
    --location) location=$value ;;
    --resource-group) resource_group=$value ;;
    --signalr-sku) signalr_sku=$value ;;
    --iothub-sku) iothub_sku=$value ;;
    --iothub-partitions) iothub_partitions=$value ;;
    --plan-sku) plan_sku=$value ;;
    --app-insights) app_insights=1 ;;
    --device-id) device_id=$value ;;
    --consumer-group) consumer_group=$value ;;
    --partition-key) partition_key=$value ;;
    --publish) publish=$value ;;
    --app-dir) app_dir=$value ;;
    --dashboard-src) dashboard_src=$value ;;
    --dashboard-out) dashboard_out=$value ;;
    --dry-run) dry_run=1 ;;
    --yes | -y) assume_yes=1 ;;
    --no-wait) no_wait=1 ;;
    -h | --help) usage; exit 0 ;;
  esac
done

[[ $prefix =~ ^[a-z][a-z0-9-]{1,19}$ && $prefix != *- ]] ||
  die "--name-prefix must be 2-20 lowercase letters, digits or hyphens, starting with a letter"
[[ -z $suffix || $suffix =~ ^[a-z0-9]{1,8}$ ]] || die "--suffix must be 1-8 lowercase letters or digits"
resource_group=${resource_group:-$prefix-rg}
[[ $resource_group =~ ^[-A-Za-z0-9_.()]{1,90}$ ]] || die "invalid --resource-group: $resource_group"
[[ $location =~ ^[a-z0-9]+$ ]] || die "--location is a region name such as eastus or australiaeast"
[[ $iothub_partitions =~ ^[0-9]+$ ]] || die "--iothub-partitions must be a number"
if [[ $iothub_sku == F1 && $iothub_partitions != 2 ]]; then
  die "the free IoT Hub tier (F1) has exactly 2 partitions: drop --iothub-partitions or pick another --iothub-sku"
fi
[[ $device_id =~ ^[-A-Za-z0-9_.:]{1,128}$ ]] || die "invalid --device-id: $device_id"
[[ $consumer_group =~ ^[\$A-Za-z0-9][-A-Za-z0-9_.]{0,49}$ ]] || die "invalid --consumer-group: $consumer_group"
case $publish in auto | func | zip) ;; *) die "--publish is func, zip or auto" ;; esac

# ---- How every command is shown and run ------------------------------------------------------

# Each word as a shell would need it: bare when safe, else in single quotes.
show_cmd() {
  local word line=
  for word in "$@"; do
    if [[ $word =~ ^[-A-Za-z0-9_./:=@%+,]+$ ]]; then
      line+=" $word"
    else
      line+=" '${word//\'/\'\\\'\'}'"
    fi
  done
  printf '+%s\n' "$line" >&3
}

# run CMD...: a command that changes something. Shown; not run in a dry run.
run() {
  show_cmd "$@"
  ((dry_run)) && return 0
  "$@"
}

# query PLACEHOLDER CMD...: a read whose output the script uses. Shown; in a dry run the
# placeholder stands for the output.
query() {
  local placeholder=$1
  shift
  show_cmd "$@"
  if ((dry_run)); then
    printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}

# present [FIELD] CMD...: a show command; succeeds when the resource exists, fails when Azure says
# it does not, and stops the script on any other error. It asks for the resource's name (or
# FIELD, for resources without one), since some show commands answer a missing resource with
# nothing at all rather than an error. In a dry run nothing exists yet, so the commands that a
# first run issues are all shown.
not_found='not ?found|could not be found|was not found|does not exist|doesn.t exist|can.t find|cannot find|unable to find|not installed|NotFound'
present() {
  local field=name
  if [[ $1 != az ]]; then
    field=$1
    shift
  fi
  show_cmd "$@" --query "$field" --output tsv
  ((dry_run)) && return 1
  local out err
  err=$(mktemp)
  if out=$("$@" --query "$field" --output tsv 2>"$err"); then
    rm -f "$err"
    [[ -n $out ]]
    return
  fi
  if grep -qiE "$not_found" "$err"; then
    rm -f "$err"
    return 1
  fi
  cat "$err" >&2
  rm -f "$err"
  die "'$*' failed"
}

# ---- Teardown ----------------------------------------------------------------------------------

teardown() {
  if ((!dry_run)); then
    command -v az >/dev/null || die "the Azure CLI (az) is not installed: see deploy/README.md"
  fi
  if ! present az group show --name "$resource_group"; then
    if ((dry_run)); then
      note "(dry run: a real run deletes the group only if it exists)"
    else
      note "Resource group $resource_group does not exist: nothing to delete."
      return 0
    fi
  fi
  if ((!assume_yes && !dry_run)); then
    local answer=
    printf 'Delete resource group %s and everything in it? This cannot be undone. [y/N] ' "$resource_group" >&3
    read -r answer || true
    [[ $answer == [yY] || $answer == [yY][eE][sS] ]] || die "not confirmed: nothing deleted"
  fi
  local wait=()
  if ((no_wait)); then wait=(--no-wait); fi
  run az group delete --name "$resource_group" --yes "${wait[@]}"
  if ((no_wait)); then
    note "Deleting $resource_group in the background."
  else
    note "Deleted resource group $resource_group."
  fi
}

if [[ $action == teardown ]]; then
  teardown
  exit 0
fi

# ---- Deploy: checks before anything is touched ---------------------------------------------------

[[ -f $dashboard_src/build.mjs ]] || die "$dashboard_src/build.mjs is missing: the dashboard cannot be built"
if [[ $publish == auto ]]; then
  if command -v func >/dev/null; then publish=func; else publish=zip; fi
fi
if ((!dry_run)); then
  command -v az >/dev/null ||
    die "the Azure CLI (az) is not installed: see deploy/README.md (https://aka.ms/InstallAzureCLIDeb)"
  command -v node >/dev/null || die "node is needed to build the dashboard"
  if [[ $publish == func ]]; then
    command -v func >/dev/null || die "--publish func needs Azure Functions Core Tools (func)"
  else
    command -v zip >/dev/null || die "zip deploy needs zip: apt-get install zip"
  fi
fi

tmp=$(mktemp -d)
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT
# Data-plane storage commands take the account key from the environment, never from argv.
unset AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_SAS_TOKEN AZURE_STORAGE_KEY AZURE_STORAGE_ACCOUNT

# ---- Subscription, names, CLI extension, resource providers --------------------------------------

subscription=$(query '<subscription-id>' az account show --query id --output tsv) ||
  die "the Azure CLI is not logged in: run az login (and az account set --subscription ... to pick one)"
if [[ -z $suffix ]]; then
  if command -v sha256sum >/dev/null; then
    suffix=$(printf '%s/%s' "$subscription" "$resource_group" | sha256sum | cut -c1-6)
  else
    suffix=$(printf '%s/%s' "$subscription" "$resource_group" | shasum -a 256 | cut -c1-6)
  fi
  if ((dry_run)); then note "(dry run: the names' suffix comes from your subscription id; --suffix sets it)"; fi
fi

# The app folder: staged by make app (which builds the handler first) unless one is given.
if [[ -z $app_dir ]]; then
  app_dir=$root/app
  run make -C "$root" --no-print-directory app ||
    die "make app failed: run make deps (installs the build dependencies) and try again"
fi
if ((!dry_run)); then
  [[ -f $app_dir/host.json && -x $app_dir/enviromon-handler ]] ||
    die "$app_dir is not a staged app folder (host.json, enviromon-handler): run make app"
fi

base=$prefix-$suffix
function_app=$base
signalr=$base-signalr
iothub=$base-hub
plan=$base-plan
storage_base=${prefix//-/}
storage=${storage_base:0:$((24 - ${#suffix}))}$suffix

# The azure-iot extension brings the device-identity commands; az installs it from Microsoft's
# extension index on first use, but only when allowed to, so it is added explicitly here.
if ! present az extension show --name azure-iot; then
  run az extension add --name azure-iot --yes
fi

for namespace in Microsoft.Storage Microsoft.Web Microsoft.SignalRService Microsoft.Devices; do
  state=$(query NotRegistered az provider show --namespace "$namespace" --query registrationState --output tsv)
  if [[ $state != Registered ]]; then
    run az provider register --namespace "$namespace" --wait
  fi
done

# ---- Resource group and storage (tables, the app's own storage, the static website) ---------------

if ! present az group show --name "$resource_group"; then
  run az group create --name "$resource_group" --location "$location" --output none
fi

if ! present az storage account show --name "$storage" --resource-group "$resource_group"; then
  run az storage account create --name "$storage" --resource-group "$resource_group" \
    --location "$location" --sku Standard_LRS --kind StorageV2 --https-only true \
    --min-tls-version TLS1_2 --allow-blob-public-access false --output none
fi
storage_connection=$(query '<storage-connection-string>' az storage account show-connection-string \
  --name "$storage" --resource-group "$resource_group" --query connectionString --output tsv)
AZURE_STORAGE_KEY=$(sed -n 's/.*AccountKey=\([^;]*\).*/\1/p' <<<"$storage_connection")
export AZURE_STORAGE_KEY
if ((!dry_run)) && [[ -z $AZURE_STORAGE_KEY ]]; then
  die "no AccountKey in the storage account's connection string"
fi

website=$(query false az storage blob service-properties show --account-name "$storage" \
  --auth-mode key --query staticWebsite.enabled --output tsv)
if [[ $website != true ]]; then
  run az storage blob service-properties update --account-name "$storage" --auth-mode key \
    --static-website true --index-document index.html --404-document index.html --output none
fi
web_endpoint=$(query "https://$storage.<zone>.web.core.windows.net/" az storage account show \
  --name "$storage" --resource-group "$resource_group" --query primaryEndpoints.web --output tsv)
web_origin=${web_endpoint%/}

# ---- Azure SignalR Service, serverless -------------------------------------------------------------

if ! present az signalr show --name "$signalr" --resource-group "$resource_group"; then
  run az signalr create --name "$signalr" --resource-group "$resource_group" --location "$location" \
    --sku "$signalr_sku" --unit-count 1 --service-mode Serverless --output none
else
  signalr_mode=$(query Serverless az signalr show --name "$signalr" --resource-group "$resource_group" \
    --query "features[?flag=='ServiceMode'].value | [0]" --output tsv)
  if [[ $signalr_mode != Serverless ]]; then
    run az signalr update --name "$signalr" --resource-group "$resource_group" \
      --service-mode Serverless --output none
  fi
fi
signalr_connection=$(query '<signalr-connection-string>' az signalr key list --name "$signalr" \
  --resource-group "$resource_group" --query primaryConnectionString --output tsv)

# ---- IoT Hub: the hub, the app's consumer group, one device ------------------------------------------

if ! present az iot hub show --name "$iothub" --resource-group "$resource_group"; then
  run az iot hub create --name "$iothub" --resource-group "$resource_group" --location "$location" \
    --sku "$iothub_sku" --partition-count "$iothub_partitions" --output none
fi
if [[ $consumer_group != "\$Default" ]]; then
  if ! present az iot hub consumer-group show --hub-name "$iothub" --resource-group "$resource_group" \
    --name "$consumer_group"; then
    run az iot hub consumer-group create --hub-name "$iothub" --resource-group "$resource_group" \
      --name "$consumer_group" --output none
  fi
fi
# The Event Hubs-compatible endpoint that the Functions host reads, with the hub's built-in
# "service" policy (ServiceConnect: read device-to-cloud messages).
mapfile -t events < <(query $'sb://iothub-ns-<hub>.servicebus.windows.net/\n<hub>' az iot hub show \
  --name "$iothub" --resource-group "$resource_group" \
  --query "[properties.eventHubEndpoints.events.endpoint, properties.eventHubEndpoints.events.path]" \
  --output tsv)
if ((${#events[@]} != 2)) || [[ -z ${events[0]} || -z ${events[1]} ]]; then
  die "could not read the Event Hubs-compatible endpoint of $iothub"
fi
events_endpoint=${events[0]}
event_hub_name=${events[1]}
service_key=$(query '<service-policy-key>' az iot hub policy show --hub-name "$iothub" \
  --resource-group "$resource_group" --name service --query primaryKey --output tsv)
iothub_connection="Endpoint=$events_endpoint;SharedAccessKeyName=service;SharedAccessKey=$service_key;EntityPath=$event_hub_name"

if ! present deviceId az iot hub device-identity show --hub-name "$iothub" --resource-group "$resource_group" \
  --device-id "$device_id"; then
  run az iot hub device-identity create --hub-name "$iothub" --resource-group "$resource_group" \
    --device-id "$device_id" --output none
fi
device_connection=$(query '<device-connection-string>' az iot hub device-identity connection-string show \
  --hub-name "$iothub" --resource-group "$resource_group" --device-id "$device_id" \
  --query connectionString --output tsv)

# ---- The Function App ------------------------------------------------------------------------------

if ! present az functionapp show --name "$function_app" --resource-group "$resource_group"; then
  hosting=(--consumption-plan-location "$location")
  if [[ ${plan_sku,,} != consumption ]]; then
    if ! present az functionapp plan show --name "$plan" --resource-group "$resource_group"; then
      run az functionapp plan create --name "$plan" --resource-group "$resource_group" \
        --location "$location" --sku "$plan_sku" --is-linux true --output none
    fi
    hosting=(--plan "$plan")
  fi
  insights=(--disable-app-insights true)
  if ((app_insights)); then insights=(); fi
  run az functionapp create --name "$function_app" --resource-group "$resource_group" \
    --storage-account "$storage" "${hosting[@]}" --os-type Linux --runtime custom \
    --functions-version 4 --https-only true "${insights[@]}" --output none
fi
app_host=$(query "$function_app.azurewebsites.net" az functionapp show --name "$function_app" \
  --resource-group "$resource_group" --query defaultHostName --output tsv)
api_base=https://$app_host

# App settings: only those that differ are set (setting any restarts the app). The values go
# through a file in a private temporary folder, so no secret is ever on a command line.
declare -A want=(
  [StorageConnectionString]=$storage_connection
  [AzureSignalRConnectionString]=$signalr_connection
  [IoTHubConnectionString]=$iothub_connection
  [EventHubName]=$event_hub_name
  [EventHubConsumerGroup]=$consumer_group
  [PartitionKey]=$partition_key
  [FUNCTIONS_WORKER_RUNTIME]=custom
)
declare -A have=()
while IFS=$'\t' read -r name value; do
  if [[ -n $name ]]; then have[$name]=$value; fi
done < <(query '' az functionapp config appsettings list --name "$function_app" \
  --resource-group "$resource_group" --query "[].[name, value]" --output tsv)

json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}
changed=()
settings_json='{'
for name in $(printf '%s\n' "${!want[@]}" | sort); do
  if [[ ${have[$name]-} != "${want[$name]}" ]]; then
    changed+=("$name")
    if ((${#changed[@]} > 1)); then settings_json+=','; fi
    settings_json+="$(json_string "$name"):$(json_string "${want[$name]}")"
  fi
done
settings_json+='}'
if ((${#changed[@]} > 0)); then
  note "(app settings to set: ${changed[*]})"
  (umask 077 && printf '%s\n' "$settings_json" >"$tmp/settings.json")
  run az functionapp config appsettings set --name "$function_app" --resource-group "$resource_group" \
    --settings "@$tmp/settings.json" --output none
fi

# CORS: the dashboard's origin, with credentials (the SignalR client sends them).
mapfile -t cors < <(query $'false\n' az functionapp cors show --name "$function_app" \
  --resource-group "$resource_group" \
  --query "[to_string(supportCredentials), join(',', allowedOrigins || \`[]\`)]" --output tsv)
origins=",${cors[1]-},"
if [[ $origins != *",$web_origin,"* ]]; then
  run az functionapp cors add --name "$function_app" --resource-group "$resource_group" \
    --allowed-origins "$web_origin" --output none
fi
if [[ ${cors[0]-} != true ]]; then
  run az functionapp cors credentials --name "$function_app" --resource-group "$resource_group" \
    --enable true --output none
fi

# ---- Publish the app, build and upload the dashboard ---------------------------------------------

if [[ $publish == func ]]; then
  # --custom: the worker runtime, which func otherwise reads from a local.settings.json.
  show_cmd cd "$app_dir"
  (
    if ((!dry_run)); then cd "$app_dir"; fi
    run func azure functionapp publish "$function_app" --custom
  )
else
  run "$here/zip-app.sh" "$app_dir" "$tmp/app.zip"
  run az functionapp deployment source config-zip --name "$function_app" \
    --resource-group "$resource_group" --src "$tmp/app.zip" --output none
fi

run node "$dashboard_src/build.mjs" --out "$dashboard_out" --api-base "$api_base"
# shellcheck disable=SC2016 # $web is the static website's container, literally
run az storage blob upload-batch --account-name "$storage" --auth-mode key --destination '$web' \
  --source "$dashboard_out" --overwrite true --output none

# ---- Done ----------------------------------------------------------------------------------------------

note ""
if ((dry_run)); then note "Dry run: nothing was run. A real run ends like this:"; fi
note "Enviromon is deployed (resource group $resource_group, $location)."
note "  Dashboard:      $web_endpoint"
note "  Function App:   $api_base"
note "  IoT Hub:        $iothub ($iothub_sku), device $device_id"
note "  Device connection string (a secret: give it to the device or the Raspberry Pi web simulator):"
note "    $device_connection"
note "Delete everything: deploy/deploy.sh teardown --resource-group $resource_group"
