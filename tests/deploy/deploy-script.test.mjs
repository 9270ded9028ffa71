// The deployment scripts against stand-in `az` and `func` that record every command line:
// the commands and their arguments, in order; idempotency (a second run creates and changes
// nothing); --dry-run runs nothing; teardown; secrets stay out of command lines and output;
// make start's script; shellcheck over every script in deploy/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  DEPLOY, MUTATING, ROOT, SECRET, START, deploy, head, opt, runScript, sandbox, scriptEnv,
} from './lib.mjs';
import { handlerEnv, startAzurite, startHandler, startStandin } from '../lib/harness.mjs';

const RG = 'enviromon-rg';
const SA = 'enviromontest01';
const APP = 'enviromon-test01';
const SIGNALR = 'enviromon-test01-signalr';
const HUB = 'enviromon-test01-hub';
const DEVICE = 'enviromon-device-1';
const WEB_ORIGIN = `https://${SA}.z8.web.core.windows.net`;

// What a first run against an empty subscription issues, in order (az, then func at publish).
const FIRST_RUN = [
  'az account show',
  'az extension show', 'az extension add',
  'az provider show', 'az provider register', 'az provider show', 'az provider register',
  'az provider show', 'az provider register', 'az provider show', 'az provider register',
  'az group show', 'az group create',
  'az storage account show', 'az storage account create', 'az storage account show-connection-string',
  'az storage blob service-properties show', 'az storage blob service-properties update',
  'az storage account show',
  'az signalr show', 'az signalr create', 'az signalr key list',
  'az iot hub show', 'az iot hub create',
  'az iot hub consumer-group show', 'az iot hub consumer-group create',
  'az iot hub show', 'az iot hub policy show',
  'az iot hub device-identity show', 'az iot hub device-identity create',
  'az iot hub device-identity connection-string show',
  'az functionapp show', 'az functionapp create', 'az functionapp show',
  'az functionapp config appsettings list', 'az functionapp config appsettings set',
  'az functionapp cors show', 'az functionapp cors add', 'az functionapp cors credentials',
  'func azure functionapp publish enviromon-test01',
  'az storage blob upload-batch',
];

// A second run: every look-up again, nothing created or changed; publishing and uploading are
// the same bits again.
const SECOND_RUN = [
  'az account show',
  'az extension show',
  'az provider show', 'az provider show', 'az provider show', 'az provider show',
  'az group show',
  'az storage account show', 'az storage account show-connection-string',
  'az storage blob service-properties show', 'az storage account show',
  'az signalr show', 'az signalr show', 'az signalr key list',
  'az iot hub show', 'az iot hub consumer-group show', 'az iot hub show', 'az iot hub policy show',
  'az iot hub device-identity show', 'az iot hub device-identity connection-string show',
  'az functionapp show', 'az functionapp show', 'az functionapp config appsettings list',
  'az functionapp cors show',
  'func azure functionapp publish enviromon-test01',
  'az storage blob upload-batch',
];

/** Every call of one run, az and func interleaved in the order they happened. */
function calls(box) {
  // The two logs are separate files; func is called once, between cors and upload-batch.
  const az = box.azCalls().map((c) => ({ ...c, tool: 'az' }));
  const fn = box.funcCalls().map((c) => ({ ...c, tool: 'func' }));
  const at = az.findIndex((c) => head(c) === 'storage blob upload-batch');
  return at < 0 ? [...az, ...fn] : [...az.slice(0, at), ...fn, ...az.slice(at)];
}
const heads = (list) => list.map((c) => `${c.tool} ${head(c)}`);
const find = (list, h, n = 0) => list.filter((c) => `${c.tool} ${head(c)}` === h)[n];

test('deploy.sh: a first run creates everything in order, a second run creates nothing', () => {
  const box = sandbox();
  try {
    // ---- first run
    const r1 = deploy(box);
    assert.equal(r1.status, 0, `first run failed:\n${r1.stdout}\n${r1.stderr}`);
    const one = calls(box);
    assert.deepEqual(heads(one), FIRST_RUN);

    const args = (h, n = 0) => find(one, h, n).args;
    assert.deepEqual(args('az extension add'), ['extension', 'add', '--name', 'azure-iot', '--yes']);
    assert.deepEqual(one.filter((c) => head(c) === 'provider register').map((c) => opt(c, '--namespace')),
      ['Microsoft.Storage', 'Microsoft.Web', 'Microsoft.SignalRService', 'Microsoft.Devices']);
    assert.deepEqual(args('az group create'),
      ['group', 'create', '--name', RG, '--location', 'eastus', '--output', 'none']);
    assert.deepEqual(args('az storage account create'), ['storage', 'account', 'create', '--name', SA,
      '--resource-group', RG, '--location', 'eastus', '--sku', 'Standard_LRS', '--kind', 'StorageV2',
      '--https-only', 'true', '--min-tls-version', 'TLS1_2', '--allow-blob-public-access', 'false',
      '--output', 'none']);
    assert.deepEqual(args('az storage blob service-properties update'), ['storage', 'blob',
      'service-properties', 'update', '--account-name', SA, '--auth-mode', 'key', '--static-website', 'true',
      '--index-document', 'index.html', '--404-document', 'index.html', '--output', 'none']);
    assert.deepEqual(args('az signalr create'), ['signalr', 'create', '--name', SIGNALR, '--resource-group', RG,
      '--location', 'eastus', '--sku', 'Free_F1', '--unit-count', '1', '--service-mode', 'Serverless',
      '--output', 'none']);
    assert.deepEqual(args('az iot hub create'), ['iot', 'hub', 'create', '--name', HUB, '--resource-group', RG,
      '--location', 'eastus', '--sku', 'F1', '--partition-count', '2', '--output', 'none']);
    assert.deepEqual(args('az iot hub consumer-group create'), ['iot', 'hub', 'consumer-group', 'create',
      '--hub-name', HUB, '--resource-group', RG, '--name', 'enviromon', '--output', 'none']);
    assert.deepEqual(args('az iot hub policy show'), ['iot', 'hub', 'policy', 'show', '--hub-name', HUB,
      '--resource-group', RG, '--name', 'service', '--query', 'primaryKey', '--output', 'tsv']);
    assert.deepEqual(args('az iot hub device-identity create'), ['iot', 'hub', 'device-identity', 'create',
      '--hub-name', HUB, '--resource-group', RG, '--device-id', DEVICE, '--output', 'none']);
    // Flex Consumption by default, with Application Insights (no --disable-app-insights). The
    // stand-in accepted these flags only because it was taught them from azure-cli's source
    // (_params.py @ 008a954e, azure-cli 2.60.0+): Debian's az 2.45 does not know them.
    const create = find(one, 'az functionapp create');
    assert.deepEqual(create.args, ['functionapp', 'create', '--name', APP,
      '--resource-group', RG, '--storage-account', SA, '--flexconsumption-location', 'eastus',
      '--runtime', 'custom', '--functions-version', '4', '--https-only', 'true', '--output', 'none']);
    assert.match(create.taughtFrom, /_params\.py @ 008a954e78929bdc055cc7f8e965325f6234b4f6/);
    const state = JSON.parse(readFileSync(box.state, 'utf8'));
    assert.deepEqual(state.functionAppConfig, { runtime: { name: 'custom' }, instanceMemoryMB: 2048 });
    // Flex no longer reads these: none is set, by the create or by the script.
    for (const k of Object.keys(state.settings)) {
      assert.ok(!/^(FUNCTIONS_WORKER_RUNTIME|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT)/.test(k), k);
    }
    assert.ok(state.settings.APPLICATIONINSIGHTS_CONNECTION_STRING, 'no Application Insights');
    assert.deepEqual(args('az functionapp cors add'), ['functionapp', 'cors', 'add', '--name', APP,
      '--resource-group', RG, '--allowed-origins', WEB_ORIGIN, '--output', 'none']);
    assert.deepEqual(args('az functionapp cors credentials'), ['functionapp', 'cors', 'credentials',
      '--name', APP, '--resource-group', RG, '--enable', 'true', '--output', 'none']);

    // Every app setting the app needs, with the values the resources hand out.
    const set = find(one, 'az functionapp config appsettings set');
    assert.match(opt(set, '--settings'), /^@/);
    assert.deepEqual(set.settingsValues, {
      AzureSignalRConnectionString: `Endpoint=https://${SIGNALR}.service.signalr.net;AccessKey=${SECRET}-signalr-key;Version=1.0;`,
      EventHubConsumerGroup: 'enviromon',
      EventHubName: HUB,
      IoTHubConnectionString: `Endpoint=sb://iothub-ns-${HUB}-1234567-0123456789.servicebus.windows.net/;` +
        `SharedAccessKeyName=service;SharedAccessKey=${SECRET}-iothub-service-key=;EntityPath=${HUB}`,
      PartitionKey: 'Sydney',
      StorageConnectionString: `DefaultEndpointsProtocol=https;EndpointSuffix=core.windows.net;AccountName=${SA};` +
        `AccountKey=${SECRET}-storage-key==`,
    });

    // Published from the staged app folder with Core Tools, as a custom handler.
    const publish = find(one, `func azure functionapp publish ${APP}`);
    assert.deepEqual(publish.args, ['azure', 'functionapp', 'publish', APP, '--custom']);
    assert.equal(publish.cwd, box.app);

    // The dashboard, built with the Function App's URL, uploaded to the static website.
    const upload = find(one, 'az storage blob upload-batch');
    assert.deepEqual(upload.args, ['storage', 'blob', 'upload-batch', '--account-name', SA, '--auth-mode', 'key',
      '--destination', '$web', '--source', box.dashboardOut, '--overwrite', 'true', '--output', 'none']);
    assert.deepEqual(upload.config, { apiBaseUrl: `https://${APP}.azurewebsites.net` });
    assert.ok(upload.uploaded.includes('index.html'), `uploaded: ${upload.uploaded}`);

    // Every command that changes something prints nothing back (create outputs can hold keys).
    for (const c of one.filter((c) => c.tool === 'az' && MUTATING.test(head(c)))) {
      if (head(c) === 'extension add' || head(c) === 'provider register') continue;
      assert.equal(opt(c, '--output'), 'none', `az ${c.args.join(' ')}`);
    }

    // The end: the dashboard URL and the device connection string.
    assert.match(r1.stdout, new RegExp(`Dashboard: +https://${SA}\\.z8\\.web\\.core\\.windows\\.net/`));
    assert.match(r1.stdout, new RegExp(`HostName=${HUB}\\.azure-devices\\.net;DeviceId=${DEVICE};SharedAccessKey=${SECRET}-device-key=`));

    // ---- second run: idempotent
    box.resetLogs();
    const r2 = deploy(box);
    assert.equal(r2.status, 0, `second run failed:\n${r2.stdout}\n${r2.stderr}`);
    const two = calls(box);
    assert.deepEqual(heads(two), SECOND_RUN);
    assert.deepEqual(two.filter((c) => c.tool === 'az' && MUTATING.test(head(c))).map((c) => c.args), []);
    assert.match(r2.stdout, new RegExp(`SharedAccessKey=${SECRET}-device-key=`));
  } finally {
    box.cleanup();
  }
});

test('deploy.sh: secrets never reach a command line, the output or a file left behind', () => {
  const box = sandbox();
  try {
    const r = deploy(box);
    assert.equal(r.status, 0, r.stderr);
    for (const c of [...box.azCalls(), ...box.funcCalls()]) {
      assert.ok(!c.args.join(' ').includes(SECRET), `secret on a command line: ${c.args.join(' ')}`);
    }
    // Only the device's connection string, which the user asked for, is printed.
    const printed = (r.stdout + r.stderr).match(new RegExp(`${SECRET}[-\\w=]*`, 'g'));
    assert.deepEqual(printed, [`${SECRET}-device-key=`]);
    // The settings file went into a private temporary folder that is gone afterwards.
    assert.deepEqual(readdirSync(box.tmp), []);
    assert.ok(!JSON.stringify(readdirSync(box.dashboardOut).map((f) => readFileSync(path.join(box.dashboardOut, f), 'latin1'))).includes(SECRET));
    // Nothing in the repository mentions a secret (the stand-ins themselves aside).
    const g = spawnSync('grep', ['-rIl', SECRET, ROOT, '--exclude-dir=node_modules', '--exclude-dir=.git',
      '--exclude-dir=rootfs'], { encoding: 'utf8' });
    const hits = g.stdout.split('\n').filter((f) => f && !f.startsWith(path.join(ROOT, 'tests/deploy/')));
    assert.deepEqual(hits, []);
  } finally {
    box.cleanup();
  }
});

test('deploy.sh --dry-run prints every command of a first run and runs none', () => {
  const box = sandbox();
  try {
    const dry = deploy(box, ['--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.deepEqual(box.azCalls(), []);
    assert.deepEqual(box.funcCalls(), []);
    assert.ok(!existsSync(box.dashboardOut), 'the dashboard was built');
    assert.ok(!existsSync(box.state));

    const printed = dry.stdout.split('\n').filter((l) => /^\+ (az|func) /.test(l)).map((l) => {
      const words = [];
      for (const w of l.slice(2).split(' ')) {
        if (w.startsWith('-')) break;
        words.push(w);
      }
      return words.join(' ');
    });
    // The same commands, in the same order, as a real first run issues.
    assert.deepEqual(printed, FIRST_RUN);
    assert.match(dry.stdout, /^\+ az signalr create --name enviromon-test01-signalr .*--service-mode Serverless/m);
    assert.match(dry.stdout, /^\+ node \S+dashboard\/build\.mjs --out \S+ --api-base https:\/\/enviromon-test01\.azurewebsites\.net$/m);
    assert.match(dry.stdout, /Dry run: nothing was run/);
    // A dry run needs neither az nor func nor make.
    const bare = runScript(DEPLOY, ['--dry-run', '--app-dir', box.app, '--dashboard-out', box.dashboardOut],
      { box, env: { ...scriptEnv(box), PATH: '/usr/bin:/bin' } });
    assert.equal(bare.status, 0, bare.stderr);
    assert.match(bare.stdout, /^\+ az group create /m);
    // Without --app-dir, the dry run shows make app instead of running it.
    const staged = runScript(DEPLOY, ['--dry-run'], { box });
    assert.equal(staged.status, 0, staged.stderr);
    assert.match(staged.stdout, /^\+ make -C \S+ --no-print-directory app$/m);
    assert.deepEqual(box.azCalls(), []);
  } finally {
    box.cleanup();
  }
});

test('deploy.sh: options change names, tiers and the way the app is published', () => {
  const box = sandbox();
  try {
    // A SignalR Service that exists already, in the Default mode, is switched to Serverless.
    box.setState((s) => {
      s.has = { 'group/demo-rg': true, 'signalr/iot-x9-signalr': true };
      s.signalrMode = 'Default';
    });
    const r = deploy(box, ['--name-prefix', 'iot', '--suffix', 'x9', '--resource-group', 'demo-rg',
      '--location', 'australiaeast', '--signalr-sku', 'Standard_S1', '--iothub-sku', 'S1',
      '--iothub-partitions', '4', '--plan-sku', 'EP1', '--app-insights', '--device-id', 'pi-7',
      '--consumer-group', '$Default', '--partition-key', 'Melbourne', '--publish', 'zip']);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const az = box.azCalls();
    const one = (h) => az.find((c) => head(c) === h);
    assert.equal(one('group create'), undefined);
    assert.equal(one('signalr create'), undefined);
    assert.deepEqual(one('signalr update').args, ['signalr', 'update', '--name', 'iot-x9-signalr',
      '--resource-group', 'demo-rg', '--service-mode', 'Serverless', '--output', 'none']);
    assert.deepEqual(one('iot hub create').args, ['iot', 'hub', 'create', '--name', 'iot-x9-hub',
      '--resource-group', 'demo-rg', '--location', 'australiaeast', '--sku', 'S1', '--partition-count', '4',
      '--output', 'none']);
    assert.equal(one('iot hub consumer-group show'), undefined);
    assert.equal(opt(one('storage account create'), '--name'), 'iotx9');
    assert.deepEqual(one('functionapp plan create').args, ['functionapp', 'plan', 'create', '--name', 'iot-x9-plan',
      '--resource-group', 'demo-rg', '--location', 'australiaeast', '--sku', 'EP1', '--is-linux', 'true',
      '--output', 'none']);
    assert.deepEqual(one('functionapp create').args, ['functionapp', 'create', '--name', 'iot-x9',
      '--resource-group', 'demo-rg', '--storage-account', 'iotx9', '--plan', 'iot-x9-plan', '--os-type', 'Linux',
      '--runtime', 'custom', '--functions-version', '4', '--https-only', 'true', '--output', 'none']);
    assert.equal(opt(one('iot hub device-identity create'), '--device-id'), 'pi-7');
    const set = one('functionapp config appsettings set');
    assert.equal(set.settingsValues.EventHubConsumerGroup, '$Default');
    assert.equal(set.settingsValues.PartitionKey, 'Melbourne');

    // Zip deploy: no Core Tools; the zip keeps the handler executable and leaves local settings out.
    assert.deepEqual(box.funcCalls(), []);
    const zip = one('functionapp deployment source config-zip');
    assert.deepEqual(zip.args.slice(0, 8), ['functionapp', 'deployment', 'source', 'config-zip', '--name', 'iot-x9',
      '--resource-group', 'demo-rg']);
    const names = zip.zip.map((e) => e.name);
    assert.ok(names.includes('host.json') && names.includes('EnvironmentEventTrigger/function.json'), names.join(' '));
    assert.ok(!names.some((n) => n.includes('local.settings')), names.join(' '));
    assert.match(zip.zip.find((e) => e.name === 'enviromon-handler').mode, /^-rwxr-xr-x$/);
  } finally {
    box.cleanup();
  }
});

test('deploy.sh: the legacy Linux Consumption plan, instance memory, Application Insights off', () => {
  const box = sandbox();
  try {
    let r = deploy(box, ['--plan-sku', 'Consumption', '--no-app-insights']);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const create = box.azCalls().find((c) => head(c) === 'functionapp create');
    assert.deepEqual(create.args, ['functionapp', 'create', '--name', APP, '--resource-group', RG,
      '--storage-account', SA, '--consumption-plan-location', 'eastus', '--os-type', 'Linux', '--runtime', 'custom',
      '--functions-version', '4', '--https-only', 'true', '--disable-app-insights', 'true', '--output', 'none']);
    // The legacy plan reads FUNCTIONS_WORKER_RUNTIME (create set it already, so it is not set again).
    let state = JSON.parse(readFileSync(box.state, 'utf8'));
    assert.equal(state.settings.FUNCTIONS_WORKER_RUNTIME, 'custom');
    assert.equal(state.settings.APPLICATIONINSIGHTS_CONNECTION_STRING, undefined);
    assert.equal(opt(box.azCalls().find((c) => head(c) === 'functionapp config appsettings set'), '--settings')[0], '@');

    // A second run with the default (Flex) keeps the existing app where it is, says so, and still
    // gives it the worker runtime it needs; the missing Application Insights is pointed out.
    box.resetLogs();
    box.setState((st) => { delete st.settings.FUNCTIONS_WORKER_RUNTIME; });
    r = deploy(box);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(box.azCalls().find((c) => head(c) === 'functionapp create'), undefined);
    assert.match(r.stdout, /exists on the Dynamic plan and stays there; az functionapp flex-migration start/);
    assert.match(r.stdout, /has no Application Insights/);
    const set = box.azCalls().find((c) => head(c) === 'functionapp config appsettings set');
    assert.deepEqual(set.settingsValues, { FUNCTIONS_WORKER_RUNTIME: 'custom' });

    // Flex with a memory size; a Flex app holding settings Flex does not read: reported, untouched.
    const flex = sandbox();
    try {
      r = deploy(flex, ['--instance-memory', '4096']);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(flex.azCalls().find((c) => head(c) === 'functionapp create').args.slice(6, 12),
        ['--storage-account', SA, '--flexconsumption-location', 'eastus', '--instance-memory', '4096']);
      state = JSON.parse(readFileSync(flex.state, 'utf8'));
      assert.equal(state.functionAppConfig.instanceMemoryMB, 4096);
      flex.setState((st) => { st.settings.WEBSITE_RUN_FROM_PACKAGE = '1'; st.settings.FUNCTIONS_WORKER_RUNTIME = 'custom'; });
      flex.resetLogs();
      r = deploy(flex);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Flex Consumption does not use the app settings (FUNCTIONS_WORKER_RUNTIME WEBSITE_RUN_FROM_PACKAGE|WEBSITE_RUN_FROM_PACKAGE FUNCTIONS_WORKER_RUNTIME)/);
      assert.deepEqual(flex.azCalls().filter((c) => MUTATING.test(head(c))).map(head), []);
    } finally {
      flex.cleanup();
    }

    // Bad plan options change nothing.
    for (const [args, message] of [
      [['--plan-sku', 'Consumption', '--instance-memory', '2048'], /Flex Consumption plan only/],
      [['--instance-memory', '1000'], /512, 2048 or 4096/],
      [['--plan-sku', 'B1;rm'], /--plan-sku is Flex, Consumption/],
    ]) {
      box.resetLogs();
      r = deploy(box, args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, message);
      assert.deepEqual(box.azCalls(), []);
    }
  } finally {
    box.cleanup();
  }
});

test('deploy.sh --auth-client-id turns App Service authentication on for the API, once', () => {
  const box = sandbox();
  const client = '0f0e0d0c-0b0a-0908-0706-050403020100';
  try {
    let r = deploy(box, ['--auth-client-id', client]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const update = box.azCalls().find((c) => head(c) === 'webapp auth update');
    assert.deepEqual(update.args, ['webapp', 'auth', 'update', '--name', APP, '--resource-group', RG,
      '--enabled', 'true', '--action', 'AllowAnonymous', '--aad-client-id', client,
      '--aad-token-issuer-url', 'https://sts.windows.net/99999999-8888-7777-6666-555555555555/', '--output', 'none']);
    // Again: nothing to change.
    box.resetLogs();
    r = deploy(box, ['--auth-client-id', client]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(box.azCalls().find((c) => head(c) === 'webapp auth update'), undefined);
    // Required sign-in and another issuer: updated.
    box.resetLogs();
    r = deploy(box, ['--auth-client-id', client, '--auth-required', '--auth-issuer', 'https://login.microsoftonline.com/t/v2.0']);
    assert.equal(r.status, 0, r.stderr);
    const again = box.azCalls().find((c) => head(c) === 'webapp auth update');
    assert.equal(opt(again, '--action'), 'LoginWithAzureActiveDirectory');
    assert.equal(opt(again, '--aad-token-issuer-url'), 'https://login.microsoftonline.com/t/v2.0');
    // Without the option, authentication is not touched at all.
    box.resetLogs();
    r = deploy(box);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!box.azCalls().some((c) => head(c).startsWith('webapp auth')));
    for (const [args, message] of [
      [['--auth-client-id', 'not-a-guid'], /a GUID/],
      [['--auth-required'], /need --auth-client-id/],
      [['--auth-client-id', client, '--auth-issuer', 'http://plain'], /https:\/\/ URL/],
    ]) {
      r = deploy(box, args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, message);
    }
  } finally {
    box.cleanup();
  }
});

test('deploy.sh verify: through the stand-in IoT Hub to a real handler and Azurite; each failing stage named', { timeout: 120000 }, async () => {
  const box = sandbox();
  const az = await startAzurite();
  const standin = await startStandin();
  const h = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: standin.connectionString }));
  try {
    // Deployed first (against the stand-in az), then verify. The stand-in "IoT Hub" hands the
    // message to the handler as the Functions host would (IoT Hub and the host cannot run here).
    assert.equal(deploy(box).status, 0);
    box.setState((st) => { st.d2cForward = `${h.url}/EnvironmentEventTrigger`; });
    box.resetLogs();
    const verify = (extra = []) => runScript(DEPLOY, ['verify', '--suffix', 'test01', '--api', h.url,
      '--verify-timeout', '20', ...extra], { box });
    let r = verify();
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const send = box.azCalls().find((c) => head(c) === 'iot device send-d2c-message');
    assert.deepEqual(send.args.slice(0, 9), ['iot', 'device', 'send-d2c-message', '--hub-name', HUB,
      '--resource-group', RG, '--device-id', DEVICE]);
    assert.match(send.taughtFrom, /azure-iot-cli-extension/);
    assert.equal(send.forwarded, 200);
    const id = JSON.parse(send.data).messageId;
    assert.match(r.stdout, new RegExp(`message ${id}`));
    assert.match(r.stdout, /\[ok\] IoT Hub accepted the reading/);
    assert.match(r.stdout, /\[ok\] the reading is stored and served by getdevicestate: \d+\.\d s after sending/);
    assert.match(r.stdout, /\[ok\] SignalR negotiate/);
    // verify changes nothing in Azure.
    assert.deepEqual(box.azCalls().filter((c) => MUTATING.test(head(c))).map(head), []);

    // The hub is gone: verify stops at IoT Hub and says how to look.
    box.setState((st) => { delete st.has[`iothub/${HUB}`]; });
    r = verify();
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /FAILED at IoT Hub: IoT Hub did not accept the reading: .*IotHubNotFound/);
    assert.match(r.stdout, new RegExp(`az iot hub show --name ${HUB} --resource-group ${RG}`));
    assert.match(r.stderr, /verification failed/);

    // The message is accepted but never delivered (the trigger does not run): the function
    // stage, with the Application Insights query.
    box.setState((st) => { st.has[`iothub/${HUB}`] = true; delete st.d2cForward; });
    r = verify(['--verify-timeout', '2']);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /FAILED at the function \(EnvironmentEventTrigger and the app\): the reading did not appear within 2 s/);
    assert.match(r.stdout, new RegExp(`Application Insights of ${APP}`));
    assert.match(r.stdout, /customDimensions\.Category == "Host\.Function\.Console"/);
    assert.match(r.stdout, /requests \| where timestamp > ago\(30m\) and name == "EnvironmentEventTrigger"/);

    // A dry run shows what it would run; the end of a deploy runs it unless --no-verify.
    r = runScript(DEPLOY, ['verify', '--dry-run', '--suffix', 'test01'], { box });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\+ node \S+\/deploy\/verify\.mjs --api https:\/\/enviromon-test01\.azurewebsites\.net --device-id enviromon-device-1 --send az --hub-name enviromon-test01-hub --resource-group enviromon-rg --app enviromon-test01 --timeout 180$/m);
    r = deploy(box, ['--dry-run'], { verify: true });
    assert.match(r.stdout, /^\+ node \S+\/deploy\/verify\.mjs /m);
    r = deploy(box, ['--dry-run']);
    assert.doesNotMatch(r.stdout, /verify\.mjs/);
    // Without the azure-iot extension (a deploy adds it), verify says how to get it.
    box.setState((st) => { delete st.has['ext/azure-iot']; });
    r = runScript(DEPLOY, ['verify', '--suffix', 'test01', '--api', h.url], { box });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /az extension add --name azure-iot/);
    // Bad verify options change nothing.
    for (const [args, message] of [[['--verify-timeout', '0'], /--verify-timeout/], [['--api', 'ftp://x'], /--api must be/]]) {
      box.resetLogs();
      r = runScript(DEPLOY, ['verify', ...args], { box });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
      assert.deepEqual(box.azCalls(), []);
    }
  } finally {
    await h.stop();
    await standin.stop();
    await az.stop();
    box.cleanup();
  }
});

test('deploy.sh checks its arguments and the dashboard build before touching Azure', () => {
  const box = sandbox();
  try {
    const cases = [
      [['--iothub-sku', 'F1', '--iothub-partitions', '4'], /exactly 2 partitions/],
      [['--name-prefix', 'Bad_Prefix'], /--name-prefix/],
      [['--publish', 'ftp'], /--publish is func, zip or auto/],
      [['--location'], /--location needs a value/],
      [['--bogus'], /unknown argument: --bogus/],
      [['--dashboard-src', box.tmp], /build\.mjs is missing/],
    ];
    for (const [args, message] of cases) {
      const r = deploy(box, args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, message);
    }
    assert.deepEqual(box.azCalls(), []);
    const help = runScript(DEPLOY, ['--help'], { box });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--signalr-sku/);
  } finally {
    box.cleanup();
  }
});

test('deploy.sh: a failing look-up stops the run; an empty answer means absent', () => {
  const box = sandbox();
  try {
    box.setState((s) => {
      s.has = { 'group/enviromon-rg': true };
      s.errors = { 'storage account show': '(AuthorizationFailed) The client does not have authorization' };
    });
    let r = deploy(box);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /AuthorizationFailed/);
    assert.equal(box.azCalls().find((c) => head(c) === 'storage account create'), undefined);
    assert.equal(head(box.azCalls().at(-1)), 'storage account show');

    // Some show commands print nothing for a missing resource: that is "absent", so it is created.
    box.resetLogs();
    box.setState((s) => { s.errors = {}; s.empty = { 'functionapp plan show': true }; });
    r = deploy(box, ['--plan-sku', 'B1']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(box.azCalls().some((c) => head(c) === 'functionapp plan create'));
  } finally {
    box.cleanup();
  }
});

test('deploy.sh teardown deletes the resource group, after confirmation unless --yes', () => {
  const box = sandbox();
  try {
    box.setState((s) => { s.has = { 'group/enviromon-rg': true, 'storage/x': true }; });
    const teardown = (args, input = '') => runScript(DEPLOY, ['teardown', ...args], { box, input });

    let r = teardown(['--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(box.azCalls(), []);
    assert.match(r.stdout, /^\+ az group delete --name enviromon-rg --yes$/m);

    r = teardown([], 'n\n');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not confirmed/);
    assert.deepEqual(box.azCalls().map(head), ['group show']);

    box.resetLogs();
    r = teardown([], 'y\n');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(box.azCalls().map((c) => c.args), [
      ['group', 'show', '--name', 'enviromon-rg', '--query', 'name', '--output', 'tsv'],
      ['group', 'delete', '--name', 'enviromon-rg', '--yes'],
    ]);

    // Gone already: nothing to do, and no failure.
    box.resetLogs();
    r = teardown(['--yes']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /does not exist/);
    assert.deepEqual(box.azCalls().map(head), ['group show']);

    box.resetLogs();
    box.setState((s) => { s.has = { 'group/other-rg': true }; });
    r = teardown(['--resource-group', 'other-rg', '--yes', '--no-wait']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(box.azCalls()[1].args, ['group', 'delete', '--name', 'other-rg', '--yes', '--no-wait']);
  } finally {
    box.cleanup();
  }
});

test('start.sh: func start in the staged folder, or a clear message when something is missing', () => {
  const box = sandbox();
  try {
    const settings = path.join(box.dir, 'my.settings.json');
    writeFileSync(settings, '{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom"}}\n');
    rmSync(path.join(box.app, 'local.settings.json'));

    // No Core Tools: how to get them, and make run as the way without Azure.
    let r = runScript(START, [box.app, '--settings', settings], { box, env: scriptEnv(box, { standins: false }) });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Azure Functions Core Tools/);
    assert.match(r.stderr, /azure-functions-core-tools/);
    assert.match(r.stderr, /make run/);
    assert.deepEqual(box.funcCalls(), []);

    // No settings: copy the sample.
    r = runScript(START, [box.app, '--settings', path.join(box.dir, 'absent.json')], { box });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cp local\.settings\.sample\.json local\.settings\.json/);
    assert.deepEqual(box.funcCalls(), []);

    // Not staged.
    r = runScript(START, [box.tmp, '--settings', settings], { box });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /make app/);

    // Everything there: func start runs in the app folder with the settings copied in.
    r = runScript(START, [box.app, '--settings', settings, '--', '--port', '7077'], { box });
    assert.equal(r.status, 0, r.stderr);
    const [call] = box.funcCalls();
    assert.deepEqual(call.args, ['start', '--port', '7077']);
    assert.equal(call.cwd, box.app);
    assert.ok(call.files.includes('local.settings.json'));
    const copied = path.join(box.app, 'local.settings.json');
    assert.equal(readFileSync(copied, 'utf8'), readFileSync(settings, 'utf8'));
    assert.equal(statSync(copied).mode & 0o777, 0o600);
  } finally {
    box.cleanup();
  }
});

test('every script in deploy/ passes shellcheck', () => {
  const v = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
  assert.ok(!v.error, 'shellcheck is not installed: make deps (tools/install-deps.sh) installs it');
  const scripts = readdirSync(path.join(ROOT, 'deploy')).filter((f) => f.endsWith('.sh'))
    .map((f) => path.join(ROOT, 'deploy', f));
  scripts.push(path.join(ROOT, 'tests/deploy/standins/func'));
  assert.ok(scripts.includes(DEPLOY));
  const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...scripts], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
