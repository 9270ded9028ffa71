// Every `az` command line the deploy script issues (first run, second run, the variants its
// options produce, teardown) is replayed through the real Azure CLI's parser: Debian's azure-cli
// package, offline and without a login. tests/deploy/az_parse.py loads the CLI once and hands it
// each line as `az` would (command table, argument parser, argument validators) but never runs
// the command; a line is accepted when it gets that far, or stops only at "Please run 'az login'".
//
// Lines 2.45 cannot judge are checked otherwise, each with its source:
// - Flex Consumption flags (--flexconsumption-location, --instance-memory) are newer than 2.45:
//   defined in Azure/azure-cli src/azure-cli/azure/cli/command_modules/appservice/_params.py
//   (commit 008a954e78929bdc055cc7f8e965325f6234b4f6, argument_context 'functionapp create'),
//   released in azure-cli 2.60.0 (Microsoft Learn, "Create and manage function apps in the Flex
//   Consumption plan", 2024-05-21). 2.45 must refuse exactly those flags and nothing else; the same
//   line with the legacy plan's flags in their place must pass 2.45's parser; and the stand-in az,
//   taught those flags from that file, must have accepted the line (it refuses unknown flags).
// - azure-iot extension commands (device identities, send-d2c-message) are not in 2.45 at all and
//   cannot be installed offline: the stand-in az, taught their flags from
//   Azure/azure-iot-cli-extension, accepted them; 2.45 must refuse them only as unknown commands.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import http from 'node:http';
import { DEPLOY, HERE, deploy, head, runScript, sandbox, scriptEnv } from './lib.mjs';

const PYTHON = '/usr/bin/python3'; // Debian's python, which has Debian's azure-cli modules
const cliMissing = spawnSync(PYTHON, ['-c', 'import azure.cli.core'], { encoding: 'utf8' }).status !== 0
  ? "Debian's azure-cli package is not installed (apt-get install azure-cli; make deps does it)"
  : false;

// Command groups that come from the azure-iot extension rather than from the CLI itself. Debian's
// azure-cli 2.45 does not ship the extension, and it cannot be installed here (`az extension add`
// downloads it from Microsoft's extension index, which this machine cannot reach), so 2.45 answers
// "'device-identity' is misspelled or not recognized" for these lines: they are not validated.
const EXTENSION_GROUPS = ['iot hub device-identity', 'iot device'];
const FLEX_FLAGS = ['--flexconsumption-location', '--instance-memory'];
const isFlex = (args) => args.some((a) => FLEX_FLAGS.includes(a));
/** The same line on the legacy plan: what 2.45 can check of the rest of it. */
function legacyEquivalent(args) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--flexconsumption-location') {
      out.push('--consumption-plan-location', args[++i], '--os-type', 'Linux');
    } else if (args[i] === '--instance-memory') {
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}
const fromExtension = (args) => EXTENSION_GROUPS.some((g) => args.join(' ').startsWith(g + ' '));

/** The distinct az command lines of every way the script runs, with stand-ins. */
async function recordedCommandLines() {
  const lines = new Map();
  const taught = new Map();
  const collect = (box) => {
    for (const c of box.azCalls()) {
      lines.set(JSON.stringify(c.args), c.args);
      if (c.taughtFrom && !c.failed) taught.set(JSON.stringify(c.args), c.taughtFrom);
    }
    box.resetLogs();
  };
  const boxes = [];
  const run = (box, args, opts) => {
    const r = deploy(box, args, opts);
    assert.equal(r.status, 0, `${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    collect(box);
  };
  try {
    const a = sandbox();
    boxes.push(a);
    run(a, []);
    run(a, []);
    const b = sandbox();
    boxes.push(b);
    b.setState((s) => { s.has = { 'signalr/iot-x9-signalr': true }; s.signalrMode = 'Default'; });
    run(b, ['--name-prefix', 'iot', '--suffix', 'x9', '--resource-group', 'demo-rg', '--iothub-sku', 'S1',
      '--iothub-partitions', '4', '--signalr-sku', 'Standard_S1', '--plan-sku', 'EP1', '--app-insights',
      '--consumer-group', '$Default', '--publish', 'zip']);
    // The legacy plan without Application Insights; Flex with a memory size and authentication.
    const c = sandbox();
    boxes.push(c);
    run(c, ['--plan-sku', 'Consumption', '--no-app-insights']);
    const d = sandbox();
    boxes.push(d);
    run(d, ['--instance-memory', '4096', '--auth-client-id', '0f0e0d0c-0b0a-0908-0706-050403020100', '--auth-required']);
    // verify: an API that answers (an empty device list), so that the reading is sent; it then
    // times out, which is fine here: only the command lines matter.
    const api = http.createServer((req, res) => { res.setHeader('Content-Type', 'application/json'); res.end('[]'); });
    await new Promise((r) => api.listen(0, '127.0.0.1', r));
    try {
      const v = await new Promise((resolve) => {
        const p = spawn('bash', [DEPLOY, 'verify', '--suffix', 'test01', '--api', `http://127.0.0.1:${api.address().port}`,
          '--verify-timeout', '1'], { env: scriptEnv(a), stdio: 'ignore' });
        p.on('exit', resolve);
      });
      assert.equal(v, 1);
      collect(a);
    } finally {
      await new Promise((r) => api.close(r));
    }
    // Teardown: after confirmation, with --yes, with --no-wait.
    for (const args of [['--yes'], ['--yes', '--no-wait']]) {
      b.setState((s) => { s.has = { 'group/demo-rg': true }; });
      const r = runScript(DEPLOY, ['teardown', '--resource-group', 'demo-rg', ...args], { box: b });
      assert.equal(r.status, 0, r.stderr);
      collect(b);
    }
    // Files named on a command line (the settings file, the zip) are gone by now; the replay
    // gets stand-ins for them, since az reads an @file argument while it parses.
    return { commands: [...lines.values()], taught };
  } finally {
    for (const b of boxes) b.cleanup();
  }
}

test('every az command line of deploy.sh is accepted by the real Azure CLI parser', { skip: cliMissing }, async (t) => {
  const { commands, taught } = await recordedCommandLines();
  assert.ok(commands.length > 40, `only ${commands.length} command lines recorded`);
  const kinds = new Set(commands.map((args) => head({ args })));
  for (const k of ['group create', 'signalr create', 'iot hub create', 'functionapp create', 'group delete',
    'functionapp deployment source config-zip', 'signalr update', 'functionapp plan create', 'webapp auth update',
    'iot device send-d2c-message']) {
    assert.ok(kinds.has(k), `no 'az ${k}' among the recorded lines`);
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-azcli-'));
  try {
    const settings = path.join(dir, 'settings.json');
    writeFileSync(settings, '{"PartitionKey": "Sydney"}\n');
    const source = path.join(dir, 'dashboard');
    mkdirSync(source);
    const fixFiles = (args) => args.map((a, i) => {
      if (a.startsWith('@')) return `@${settings}`;
      if (args[i - 1] === '--source') return source;
      return a;
    });
    const flexLines = commands.filter(isFlex);
    assert.ok(flexLines.length >= 2, 'no Flex Consumption lines recorded');
    const replay = [...commands, ...flexLines.map(legacyEquivalent)].map(fixFiles);
    const input = path.join(dir, 'commands.jsonl');
    writeFileSync(input, replay.map((a) => JSON.stringify(a)).join('\n') + '\n');
    const r = spawnSync(PYTHON, [path.join(HERE, 'az_parse.py'), input], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300000,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        AZURE_CONFIG_DIR: path.join(dir, 'azure'), // no login, no defaults, no extensions
        AZURE_CORE_COLLECT_TELEMETRY: 'false',
        AZURE_CORE_ERROR_RECOMMENDATION: 'off', // no on-line "did you mean" look-ups
        AZURE_CORE_NO_COLOR: 'true',
      },
    });
    assert.equal(r.status, 0, `az_parse.py failed: ${r.stderr}`);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(results.length, replay.length);
    const legacyResults = results.slice(commands.length);

    const skipped = [];
    for (const [i, res] of results.slice(0, commands.length).entries()) {
      const line = `az ${commands[i].join(' ')}`;
      const key = JSON.stringify(commands[i]);
      if (isFlex(commands[i])) {
        const j = flexLines.indexOf(commands[i]);
        await t.test(line, () => {
          // 2.45 refuses these flags, and only these: the rest of the line is what it knows.
          assert.equal(res.accepted, false, 'azure-cli 2.45 accepted a Flex flag: the test premise is wrong');
          const m = res.message.match(/unrecognized arguments: (.*)/);
          assert.ok(m, res.message);
          assert.deepEqual(m[1].split(/\s+/).filter((w) => w.startsWith('-')).sort(),
            FLEX_FLAGS.filter((f) => commands[i].includes(f)).sort());
          // The same line on the legacy plan passes 2.45's parser and validators.
          assert.ok(legacyResults[j].accepted, `legacy form rejected by azure-cli 2.45: ${legacyResults[j].message}`);
          // And the stand-in taught from azure-cli's source accepted it as it is.
          assert.match(taught.get(key) ?? '', /_params\.py @ 008a954e78929bdc055cc7f8e965325f6234b4f6/);
        });
        t.diagnostic(`${line}: Flex flags checked against azure-cli _params.py @ 008a954e (2.60.0+) by the stand-in az`);
        continue;
      }
      if (fromExtension(commands[i])) {
        // Not validated, but make sure the CLI turned it down for that reason and no other.
        assert.match(res.message, /is misspelled or not recognized/, line);
        skipped.push(line);
        if (head({ args: commands[i] }) === 'iot device send-d2c-message') {
          assert.match(taught.get(key) ?? '', /azure-iot-cli-extension azext_iot\/iothub\/commands_device_messaging\.py/, line);
        }
        await t.test(line, { skip: 'azure-iot extension command: Debian azure-cli 2.45 does not include ' +
          'the extension and it cannot be installed offline, so this line is not validated' }, () => {});
        continue;
      }
      await t.test(line, () => {
        assert.ok(res.accepted, `rejected by azure-cli: ${res.message}`);
      });
    }
    t.diagnostic(`${commands.length - skipped.length - flexLines.length} lines validated by azure-cli 2.45, ` +
      `${flexLines.length} Flex lines by 2.45 in their legacy form and by the taught stand-in, ` +
      `${skipped.length} azure-iot extension lines by the taught stand-in only`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the parser check itself rejects wrong commands and arguments', { skip: cliMissing }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-azcli-'));
  try {
    const lines = [
      ['group', 'show', '--name', 'x'],
      ['grop', 'show', '--name', 'x'],
      ['signalr', 'create', '--name', 's', '--resource-group', 'g', '--sku', 'Free_F1', '--servce-mode', 'Serverless'],
      ['signalr', 'create', '--name', 's', '--resource-group', 'g', '--sku', 'Free_F1', '--service-mode', 'Serverles'],
      ['functionapp', 'create', '--name', 'a', '--resource-group', 'g', '--os-type', 'Linux'],
      ['functionapp', 'cors', 'show', '--name', 'a', '--resource-group', 'g', '--query', '[to_string(x'],
    ];
    const input = path.join(dir, 'commands.jsonl');
    writeFileSync(input, lines.map((a) => JSON.stringify(a)).join('\n') + '\n');
    const r = spawnSync(PYTHON, [path.join(HERE, 'az_parse.py'), input], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000,
      env: { PATH: process.env.PATH, HOME: dir, AZURE_CONFIG_DIR: path.join(dir, 'azure'),
        AZURE_CORE_COLLECT_TELEMETRY: 'false', AZURE_CORE_ERROR_RECOMMENDATION: 'off' },
    });
    assert.equal(r.status, 0, r.stderr);
    const res = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(res.map((x) => x.accepted), [true, false, false, false, false, false]);
    assert.match(res[1].message, /misspelled or not recognized/);
    assert.match(res[2].message, /unrecognized arguments/);
    assert.match(res[3].message, /invalid choice|Did you mean/);
    assert.match(res[4].message, /required/);
    assert.match(res[5].message, /query/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the stand-in az refuses flags it was not taught, as az does', () => {
  const box = sandbox();
  try {
    const az = (args) => spawnSync(path.join(HERE, 'standins/az'), args, { env: scriptEnv(box), encoding: 'utf8' });
    const base = ['functionapp', 'create', '--name', 'a', '--resource-group', 'g', '--storage-account', 's', '--runtime', 'custom'];
    const cases = [
      [[...base, '--flexconsumption-locaton', 'eastus'], /unrecognized arguments: --flexconsumption-locaton/],
      [[...base, '--flexconsumption-location', 'eastus', '--consumption-plan-location', 'eastus'], /exactly one of/],
      [[...base, '--consumption-plan-location', 'eastus', '--instance-memory', '2048'], /Flex Consumption apps only/],
      [[...base, '--flexconsumption-location', 'eastus', '--instance-memory', 'big'], /invalid int value/],
      [['iot', 'device', 'send-d2c-message', '--hub-name', 'h', '--device', 'd', '--data', '{}'], /unrecognized arguments: --device/],
    ];
    for (const [args, message] of cases) {
      const r = az(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const ok = az([...base, '--flexconsumption-location', 'eastus', '--instance-memory', '2048', '--output', 'none']);
    assert.equal(ok.status, 0, ok.stderr);
  } finally {
    box.cleanup();
  }
});
