#!/usr/bin/env node
// Proves a deployment end to end: sends one reading with a unique message id as a device, polls
// getdevicestate until that reading is there, checks SignalR negotiate, and prints how long each
// stage took. On failure it names the stage that did not answer and how to look at it.
//
//   node deploy/verify.mjs --api https://APP.azurewebsites.net --device-id DEV \
//        --send az --hub-name HUB --resource-group G [--app NAME] [--timeout 180]
//   node deploy/verify.mjs --api http://127.0.0.1:7071 --device-id DEV \
//        --send local --trigger-url http://127.0.0.1:7071/EnvironmentEventTrigger
//
// --send az: through IoT Hub, with `az iot device send-d2c-message` (the azure-iot extension;
//   Azure/azure-iot-cli-extension azext_iot/iothub/commands_device_messaging.py: --device-id,
//   --data, --hub-name, --resource-group). deploy/deploy.sh verify runs it this way.
// --send local: no IoT Hub (a machine without Azure): the reading is posted to the handler's
//   /EnvironmentEventTrigger exactly as the Functions host delivers an Event Hubs batch. Everything
//   after the send (the handler, Table Storage, getdevicestate, negotiate) is the same code path.
//
// Exit status: 0 when every stage answered, 1 when one did not, 2 for bad arguments.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const MAX_BODY = 64 << 20; // bytes of one answer: getdevicestate of a very large fleet

const STAGES = {
  iothub: 'IoT Hub',
  function: 'the function (EnvironmentEventTrigger and the app)',
  storage: 'Table Storage',
  negotiate: 'SignalR negotiate',
};

function usage(message) {
  if (message) process.stderr.write(`verify: ${message}\n`);
  process.stderr.write('usage: verify.mjs --api URL --device-id ID (--send az --hub-name HUB --resource-group G | ' +
    '--send local --trigger-url URL) [--app NAME] [--timeout SECONDS] [--interval-ms MS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { send: 'az', timeout: 180, intervalMs: 2000, requestMs: 15000 };
  const names = {
    '--api': 'api', '--device-id': 'deviceId', '--send': 'send', '--hub-name': 'hub', '--resource-group': 'group',
    '--trigger-url': 'triggerUrl', '--app': 'app', '--timeout': 'timeout', '--interval-ms': 'intervalMs',
    '--request-timeout-ms': 'requestMs',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i]];
    if (!key) usage(`unknown argument: ${argv[i]}`);
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    o[key] = argv[++i];
  }
  for (const k of ['timeout', 'intervalMs', 'requestMs']) {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < 1 || n > 3600000) usage(`--${k} must be a positive whole number`);
    o[k] = n;
  }
  if (!o.api || !/^https?:\/\/[^\s/?#]+$/.test(o.api.replace(/\/+$/, ''))) usage('--api must be http(s)://host[:port]');
  o.api = o.api.replace(/\/+$/, '');
  if (!o.deviceId || !/^[-A-Za-z0-9_.:]{1,128}$/.test(o.deviceId)) usage('--device-id is missing or invalid');
  if (o.send === 'az') {
    if (!o.hub || !o.group) usage('--send az needs --hub-name and --resource-group');
  } else if (o.send === 'local') {
    if (!o.triggerUrl || !/^https?:\/\//.test(o.triggerUrl)) usage('--send local needs --trigger-url');
  } else {
    usage('--send is az or local');
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const started = Date.now();
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const say = (s) => process.stdout.write(`verify: ${s}\n`);

// Where to look, per stage. The log queries are KQL for the app's Application Insights (Logs),
// on the tables the Functions host writes: traces (the handler's stdout/stderr under the
// category Host.Function.Console, the host's own lines) and requests (one row per invocation).
function howToLook(stage) {
  const app = opts.app ?? '<app>';
  const kql = {
    function: [
      'traces | where timestamp > ago(30m)',
      '  | where customDimensions.Category == "Host.Function.Console" or message has "enviromon-handler"',
      '     or message has "Language Worker Process exited" or severityLevel >= 3',
      '  | project timestamp, severityLevel, message | order by timestamp desc',
      'requests | where timestamp > ago(30m) and name == "EnvironmentEventTrigger"',
      '  | summarize ok = countif(success), failed = countif(not(success)), last = max(timestamp)',
    ],
    storage: [
      'traces | where timestamp > ago(30m) and (message has "storage" or message has "Table")',
      '  | project timestamp, severityLevel, message | order by timestamp desc',
    ],
    negotiate: [
      'requests | where timestamp > ago(30m) and name == "negotiate" | project timestamp, resultCode',
      'traces | where timestamp > ago(30m) and message has "SignalR" | project timestamp, message',
    ],
    iothub: [],
  }[stage];
  const lines = [];
  if (opts.send === 'az') {
    if (stage === 'iothub') {
      lines.push(`az iot hub show --name ${opts.hub} --resource-group ${opts.group} --query properties.state`,
        `az iot hub device-identity show --hub-name ${opts.hub} --resource-group ${opts.group} --device-id ${opts.deviceId}`,
        '(the free F1 tier stops accepting messages for the rest of the UTC day after 8,000)');
    } else {
      lines.push(`Application Insights of ${app} (portal: the Function App, Monitoring, Logs), with:`, ...kql.map((l) => `  ${l}`),
        `Live: func azure functionapp logstream ${app}`);
    }
  } else {
    lines.push("the handler's own output (make run: .run/logs/handler.log)");
  }
  return lines;
}

function fail(stage, what) {
  say(`FAILED at ${STAGES[stage]}: ${what}`);
  say(`after ${secs(Date.now() - started)}. How to look:`);
  for (const l of howToLook(stage)) say(`  ${l}`);
  process.exit(1);
}

/** One HTTP request with a deadline. Resolves { status, json, text } or { error }. */
async function request(url, init = {}) {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(opts.requestMs) });
    // At most MAX_BODY bytes are read: a larger answer is cut (and then is not JSON).
    const chunks = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_BODY) break;
    }
    const text = Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8');
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text };
  } catch (err) {
    return { error: err.cause?.code ?? err.name ?? String(err) };
  }
}

const brief = (r) => (r.error ? `no answer (${r.error})` : `HTTP ${r.status}${r.text ? `: ${r.text.slice(0, 160).replace(/\s+/g, ' ')}` : ''}`);

/** The device's row from getdevicestate, or a failed stage. */
async function readDevice() {
  const r = await request(`${opts.api}/api/getdevicestate`);
  // The handler names Table Storage in its error answer when the store does not answer or
  // refuses (fn_http.c: 503/502 "cannot read the device states from Table Storage"); any other
  // failure (no answer, 404, the platform's own 5xx page) is the app itself.
  const storageError = typeof r.json?.error === 'string' && /table storage|storage/i.test(r.json.error);
  if (!r.error && r.status >= 500 && storageError) {
    return { stage: 'storage', what: `getdevicestate could not read the DeviceState table: ${brief(r)}` };
  }
  if (r.error || r.status === 404 || r.status >= 500) {
    return { stage: 'function', what: `GET ${opts.api}/api/getdevicestate: ${brief(r)}` };
  }
  if (r.status !== 200 || !Array.isArray(r.json)) {
    return { stage: 'function', what: `getdevicestate answered ${brief(r)}, not a JSON array` };
  }
  return { device: r.json.find((d) => d && d.deviceId === opts.deviceId) ?? null };
}

function sendAz(body) {
  const args = ['iot', 'device', 'send-d2c-message', '--hub-name', opts.hub, '--resource-group', opts.group,
    '--device-id', opts.deviceId, '--data', body, '--output', 'none'];
  say(`sending through IoT Hub: az ${args.map((a) => (/^[-\w./:=@,]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
  const r = spawnSync('az', args, { encoding: 'utf8', timeout: 120000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? String(r.error.code ?? r.error) : (r.stderr || '').trim().split('\n').slice(-3).join(' ');
    return `IoT Hub did not accept the reading: ${why || `az exited ${r.status}`}`;
  }
  return null;
}

async function sendLocal(body, messageId) {
  // An Event Hubs batch of one event, as the Functions host posts it (dataType string): the
  // system properties carry the device identity that IoT Hub would stamp.
  const now = new Date();
  const seq = Date.now(); // grows from run to run, so the watermark never takes it for a replay
  const envelope = {
    Data: { events: JSON.stringify([body]) },
    Metadata: {
      PartitionContext: { FullyQualifiedNamespace: 'verify.local', EventHubName: 'verify', ConsumerGroup: '$Default', PartitionId: '0' },
      TriggerPartitionContext: { FullyQualifiedNamespace: 'verify.local', EventHubName: 'verify', ConsumerGroup: '$Default', PartitionId: '0' },
      SequenceNumberArray: JSON.stringify([seq]),
      OffsetArray: JSON.stringify([String(seq)]),
      PartitionKeyArray: JSON.stringify([null]),
      EnqueuedTimeUtcArray: JSON.stringify([now.toISOString().replace(/Z$/, '')]),
      SystemPropertiesArray: JSON.stringify([{
        'iothub-connection-device-id': opts.deviceId, 'iothub-connection-auth-method': '{"scope":"device","type":"sas"}',
        'iothub-enqueuedtime': now.toISOString(), 'iothub-message-source': 'Telemetry', 'message-id': messageId,
        'x-opt-sequence-number': seq, 'x-opt-offset': String(seq), 'x-opt-enqueued-time': now.toISOString(),
      }]),
      PropertiesArray: JSON.stringify([{}]),
      sys: { MethodName: 'EnvironmentEventTrigger', UtcNow: now.toISOString(), RandGuid: randomBytes(16).toString('hex') },
    },
  };
  say(`sending locally (no IoT Hub here): POST ${opts.triggerUrl}`);
  const r = await request(opts.triggerUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Azure-Functions-InvocationId': randomBytes(16).toString('hex') },
    body: JSON.stringify(envelope),
  });
  if (r.error || r.status < 200 || r.status >= 300) return { stage: 'function', what: `the handler did not take the batch: ${brief(r)}` };
  return null;
}

async function main() {
  const messageId = `verify-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  // A reading inside every valid range, with a value that also identifies it.
  const temperature = 20 + (randomBytes(2).readUInt16BE() % 1000) / 1000;
  const body = JSON.stringify({ messageId, temperature, humidity: 50, pressure: 1013.25 });
  say(`device ${opts.deviceId}, message ${messageId}, api ${opts.api}`);

  // Before sending: the API and storage answer at all (a cold app can take a while: retried).
  let first;
  for (;;) {
    first = await readDevice();
    if (!first.stage || Date.now() - started > opts.timeout * 1000) break;
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
  if (first.stage) fail(first.stage, first.what);
  say(`[ok] ${STAGES.function} answers and ${STAGES.storage} is readable (${secs(Date.now() - started)})`);

  const sendAt = Date.now();
  if (opts.send === 'az') {
    const err = sendAz(body);
    if (err) fail('iothub', err);
    say(`[ok] ${STAGES.iothub} accepted the reading (${secs(Date.now() - sendAt)})`);
  } else {
    const err = await sendLocal(body, messageId);
    if (err) fail(err.stage, err.what);
    say(`[ok] the handler took the batch (${secs(Date.now() - sendAt)})`);
  }

  let last = first;
  for (;;) {
    const r = await readDevice();
    if (r.stage) {
      last = r;
    } else if (r.device && r.device.lastMessageId === messageId) {
      say(`[ok] the reading is stored and served by getdevicestate: ${secs(Date.now() - sendAt)} after sending ` +
        `(count ${r.device.count}, temperature ${r.device.temperature})`);
      break;
    } else {
      last = r;
    }
    if (Date.now() - sendAt > opts.timeout * 1000) {
      if (last.stage) fail(last.stage, last.what);
      const seen = last.device ? `its latest stored message is ${JSON.stringify(last.device.lastMessageId ?? null)}` +
        ` (count ${last.device.count})` : 'the device has no row at all';
      fail('function', `the reading did not appear within ${opts.timeout} s (${seen}); IoT Hub accepted it, so the ` +
        'Event Hubs trigger did not run, or the handler did not commit it (another device sending under the ' +
        'same identity can also overtake it: verify with an idle --device-id)');
    }
    await new Promise((res) => setTimeout(res, opts.intervalMs));
  }

  const n = await request(`${opts.api}/api/negotiate`, { method: 'POST' });
  if (n.error || n.status !== 200 || typeof n.json?.url !== 'string' || typeof n.json?.accessToken !== 'string') {
    fail('negotiate', `POST ${opts.api}/api/negotiate: ${n.error || n.status !== 200 ? brief(n) : 'no url and accessToken in the answer'}`);
  }
  say(`[ok] ${STAGES.negotiate} hands out ${n.json.url.split('?')[0]}`);
  say(`Verified end to end in ${secs(Date.now() - started)}.`);
}

main().catch((err) => {
  process.stderr.write(`verify: ${err.stack ?? err}\n`);
  process.exit(1);
});
