#!/usr/bin/env bash
# Deploys Enviromon to Azure with the Azure CLI, or deletes what it deployed.
#
#   deploy/deploy.sh [options]             create or update everything, print the dashboard URL
#                                          and a device connection string, then verify it
#   deploy/deploy.sh verify [options]      send a reading through IoT Hub and wait until the API
#                                          serves it; name the stage that does not answer
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
usage: deploy/deploy.sh [deploy|verify|teardown] [options]

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
  --plan-sku SKU           Flex (default: the Flex Consumption plan), Consumption (the legacy
                           Linux Consumption plan, retired in 2028), or an App Service / Premium
                           plan SKU such as B1 or EP1 (a plan <prefix>-<suffix>-plan)
  --instance-memory MB     Flex only: instance memory, 512, 2048 (Azure's default) or 4096
  --no-app-insights        no Application Insights (on by default: the handler's output and
                           every failed invocation end up there)
  --auth-client-id ID      turn on App Service authentication (Microsoft Entra ID) for the API,
                           with this app registration's client id; callers stay anonymous unless
                           --auth-required
  --auth-issuer URL        token issuer (default https://sts.windows.net/<your tenant id>/)
  --auth-required          with --auth-client-id: unauthenticated callers are sent to sign in
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
  --no-verify              do not run verify at the end

Verify (also the end of a deploy):
  --device-id / --name-prefix / --suffix / --resource-group   which deployment (as for deploy)
  --api URL                the API to poll (default https://<the Function App's host name>)
  --verify-timeout S       seconds to wait for the reading (default 180)

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
plan_sku=Flex
instance_memory=
app_insights=1
auth_client_id=
auth_issuer=
auth_required=0
verify=1
verify_api=
verify_timeout=180
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
  deploy | teardown | verify) action=$1; shift ;;
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
    --dry-run | --yes | -y | --no-wait | --app-insights | --no-app-insights | --auth-required | \
      --no-verify | -h | --help)
      ((has_value == 0)) || die "$opt takes no value" ;;
    --name-prefix | --suffix | --location | --resource-group | --signalr-sku | --iothub-sku | \
      --iothub-partitions | --plan-sku | --device-id | --consumer-group | --partition-key | \
      --publish | --app-dir | --dashboard-src | --dashboard-out | --instance-memory | \
      --auth-client-id | --auth-issuer | --api | --verify-timeout)
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
    --no-app-insights) app_insights=0 ;;
    --instance-memory) instance_memory=$value ;;
    --auth-client-id) auth_client_id=$value ;;
    --auth-issuer) auth_issuer=$value ;;
    --auth-required) auth_required=1 ;;
    --no-verify) verify=0 ;;
    --api) verify_api=$value ;;
    --verify-timeout) verify_timeout=$value ;;
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
# The hosting plan: Flex Consumption (default), the legacy Linux Consumption plan, or a dedicated
# (App Service / Premium) plan of the given SKU.
case ${plan_sku,,} in
  flex | flexconsumption | fc1) plan_kind=flex ;;
  consumption | y1 | dynamic) plan_kind=consumption ;;
  *)
    [[ $plan_sku =~ ^[A-Za-z0-9]{1,8}$ ]] || die "--plan-sku is Flex, Consumption or a plan SKU such as B1 or EP1"
    plan_kind=dedicated ;;
esac
if [[ -n $instance_memory ]]; then
  [[ $plan_kind == flex ]] || die "--instance-memory applies to the Flex Consumption plan only"
  [[ $instance_memory =~ ^(512|2048|4096)$ ]] || die "--instance-memory is 512, 2048 or 4096 (MB)"
fi
if [[ -n $auth_client_id ]]; then
  [[ $auth_client_id =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] ||
    die "--auth-client-id is an app registration's client id (a GUID)"
  [[ -z $auth_issuer || $auth_issuer =~ ^https://[^[:space:]\'\"]+$ ]] || die "--auth-issuer must be an https:// URL"
elif [[ -n $auth_issuer ]] || ((auth_required)); then
  die "--auth-issuer and --auth-required need --auth-client-id"
fi
[[ -z $verify_api || $verify_api =~ ^https?://[^/[:space:]?#]+/?$ ]] || die "--api must be http(s)://host[:port]"
[[ $verify_timeout =~ ^[1-9][0-9]{0,4}$ ]] || die "--verify-timeout must be a number of seconds"

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

# ---- Verify: one reading end to end ------------------------------------------------------------

# Runs deploy/verify.mjs against the deployment: a reading with a unique message id goes through
# IoT Hub as the device (az iot device send-d2c-message, from the azure-iot extension), then
# getdevicestate is polled until it serves that reading, then negotiate is checked. verify.mjs
# prints each stage and, when one does not answer, which one and how to look (the log query).
verify_deployment() {
  local api=$verify_api
  if [[ -z $api ]]; then
    local host
    host=$(query "$function_app.azurewebsites.net" az functionapp show --name "$function_app" \
      --resource-group "$resource_group" --query defaultHostName --output tsv) ||
      die "no Function App $function_app in $resource_group: deploy first (or pass --api)"
    [[ -n $host ]] || die "no Function App $function_app in $resource_group: deploy first (or pass --api)"
    api=https://$host
  fi
  local cmd=(node "$here/verify.mjs" --api "${api%/}" --device-id "$device_id" --send az
    --hub-name "$iothub" --resource-group "$resource_group" --app "$function_app"
    --timeout "$verify_timeout")
  show_cmd "${cmd[@]}"
  ((dry_run)) && return 0
  "${cmd[@]}" >&3
}

# ---- Deploy: checks before anything is touched ---------------------------------------------------

if [[ $action == deploy ]]; then
  [[ -f $dashboard_src/build.mjs ]] || die "$dashboard_src/build.mjs is missing: the dashboard cannot be built"
fi
if [[ $publish == auto ]]; then
  if command -v func >/dev/null; then publish=func; else publish=zip; fi
fi
if ((!dry_run)); then
  command -v az >/dev/null ||
    die "the Azure CLI (az) is not installed: see deploy/README.md (https://aka.ms/InstallAzureCLIDeb)"
  command -v node >/dev/null || die "node is needed to build the dashboard and to verify"
  if [[ $action != deploy ]]; then
    :
  elif [[ $publish == func ]]; then
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

base=$prefix-$suffix
function_app=$base
signalr=$base-signalr
iothub=$base-hub
plan=$base-plan
storage_base=${prefix//-/}
storage=${storage_base:0:$((24 - ${#suffix}))}$suffix

if [[ $action == verify ]]; then
  if ((!dry_run)); then command -v node >/dev/null || die "verify needs node"; fi
  # The device-to-cloud send comes from the azure-iot extension, which a deploy adds.
  if ! present az extension show --name azure-iot && ((!dry_run)); then
    die "the azure-iot CLI extension is missing: az extension add --name azure-iot (a deploy adds it)"
  fi
  verify_deployment || die "verification failed (above)"
  exit 0
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

# Flex Consumption (the default) gives the runtime in the site's functionAppConfig, which
# `az functionapp create --flexconsumption-location L --runtime custom` writes; it no longer reads
# FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE or WEBSITE_CONTENT*, so none is set here.
# The flags: Azure/azure-cli src/azure-cli/azure/cli/command_modules/appservice/_params.py
# (commit 008a954e78929bdc055cc7f8e965325f6234b4f6: --flexconsumption-location, --instance-memory,
# --runtime, --disable-app-insights), first released in azure-cli 2.60.0 (Microsoft's "Create and
# manage function apps in the Flex Consumption plan", 2024-05-21: "version 2.60.0, or a later
# version"). Flex is Linux only, so --os-type is not given there.
if ! present az functionapp show --name "$function_app" --resource-group "$resource_group"; then
  case $plan_kind in
    flex)
      hosting=(--flexconsumption-location "$location")
      if [[ -n $instance_memory ]]; then hosting+=(--instance-memory "$instance_memory"); fi ;;
    consumption) hosting=(--consumption-plan-location "$location" --os-type Linux) ;;
    dedicated)
      if ! present az functionapp plan show --name "$plan" --resource-group "$resource_group"; then
        run az functionapp plan create --name "$plan" --resource-group "$resource_group" \
          --location "$location" --sku "$plan_sku" --is-linux true --output none
      fi
      hosting=(--plan "$plan" --os-type Linux) ;;
  esac
  # Application Insights: az functionapp create makes one (same name, same group) and sets
  # APPLICATIONINSIGHTS_CONNECTION_STRING unless told not to.
  insights=(--disable-app-insights true)
  if ((app_insights)); then insights=(); fi
  run az functionapp create --name "$function_app" --resource-group "$resource_group" \
    --storage-account "$storage" "${hosting[@]}" --runtime custom \
    --functions-version 4 --https-only true "${insights[@]}" --output none
fi
# What the app really is (an existing app keeps the plan it was created on): its host name, and
# its SKU, FlexConsumption for Flex (what az itself checks, appservice/utils.py
# is_flex_functionapp).
dry_sku=Dynamic
if [[ $plan_kind == flex ]]; then dry_sku=FlexConsumption; fi
mapfile -t site < <(query "$function_app.azurewebsites.net"$'\n'"$dry_sku" \
  az functionapp show --name "$function_app" --resource-group "$resource_group" \
  --query "[defaultHostName, sku]" --output tsv)
app_host=${site[0]-}
app_sku=${site[1]-}
[[ -n $app_host ]] || die "could not read the host name of $function_app"
app_is_flex=0
if [[ ${app_sku,,} == flexconsumption ]]; then app_is_flex=1; fi
if [[ $plan_kind == flex && $app_is_flex == 0 ]]; then
  note "(note: $function_app exists on the ${app_sku:-legacy} plan and stays there; az functionapp flex-migration start moves it to Flex Consumption)"
fi
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
)
if ((!app_is_flex)); then want[FUNCTIONS_WORKER_RUNTIME]=custom; fi
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
if ((app_is_flex)); then
  ignored=()
  for name in "${!have[@]}"; do
    case $name in FUNCTIONS_WORKER_RUNTIME | WEBSITE_RUN_FROM_PACKAGE | WEBSITE_CONTENT*) ignored+=("$name") ;; esac
  done
  if ((${#ignored[@]} > 0)); then
    note "(note: Flex Consumption does not use the app settings ${ignored[*]}; they are left as they are)"
  fi
fi
if ((app_insights)) && [[ -z ${have[APPLICATIONINSIGHTS_CONNECTION_STRING]-} && -z ${have[APPINSIGHTS_INSTRUMENTATIONKEY]-} ]] && ((!dry_run)); then
  note "(note: $function_app has no Application Insights, so the handler's output is not kept anywhere: it was created with it off; see deploy/README.md, Troubleshooting)"
fi
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

# App Service authentication (Easy Auth) for the API, with Microsoft Entra ID, when asked for.
# With it on, the platform itself validates callers and sets x-ms-client-principal-* on the
# requests it forwards (and strips them from callers), so the handler can trust those headers.
# `az webapp auth update` (the classic authentication settings; core azure-cli, appservice
# commands.py 'webapp auth' update_auth_settings, and Debian's 2.45 parses it) applies to
# function apps too: both are Microsoft.Web/sites.
if [[ -n $auth_client_id ]]; then
  tenant=$(query '<tenant-id>' az account show --query tenantId --output tsv)
  issuer=${auth_issuer:-https://sts.windows.net/$tenant/}
  auth_action=AllowAnonymous
  if ((auth_required)); then auth_action=LoginWithAzureActiveDirectory; fi
  mapfile -t auth < <(query $'false\n\n\n' az webapp auth show --name "$function_app" \
    --resource-group "$resource_group" \
    --query "[to_string(enabled), clientId, unauthenticatedClientAction, issuer]" --output tsv)
  if [[ ${auth[0]-} != true || ${auth[1]-} != "$auth_client_id" || ${auth[2]-} != "$auth_action" ||
    ${auth[3]-} != "$issuer" ]]; then
    run az webapp auth update --name "$function_app" --resource-group "$resource_group" --enabled true \
      --action "$auth_action" --aad-client-id "$auth_client_id" --aad-token-issuer-url "$issuer" --output none
  fi
  if ((app_is_flex)); then
    note "(note: Microsoft's Flex Consumption page of 2024-05-24 said authentication was not yet supported on Flex and did not block callers; check it, see deploy/README.md)"
  fi
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
  # On Flex, config-zip takes the Flex path itself (azure-cli appservice custom.py:
  # enable_zip_deploy_functionapp -> is_flex_functionapp -> enable_zip_deploy_flex, a one-deploy
  # POST to the app's /api/publish), so the same command serves every plan.
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

if ((verify)); then
  note ""
  note "Verifying: one reading through IoT Hub to the API (--no-verify skips this; deploy/deploy.sh verify runs it again)"
  verify_deployment || die "deployed, but the verification failed (above): deploy/deploy.sh verify runs it again"
fi
