// Every `az` command line the deploy script issues (first run, second run, the variants its
// options produce, teardown) is replayed through the real Azure CLI's parser: Debian's azure-cli
// package, offline and without a login. tests/deploy/az_parse.py loads the CLI once and hands it
// each line as `az` would (command table, argument parser, argument validators) but never runs
// the command; a line is accepted when it gets that far, or stops only at "Please run 'az login'".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEPLOY, HERE, deploy, head, runScript, sandbox } from './lib.mjs';

const PYTHON = '/usr/bin/python3'; // Debian's python, which has Debian's azure-cli modules
const cliMissing = spawnSync(PYTHON, ['-c', 'import azure.cli.core'], { encoding: 'utf8' }).status !== 0
  ? "Debian's azure-cli package is not installed (apt-get install azure-cli; make deps does it)"
  : false;

// Command groups that come from the azure-iot extension rather than from the CLI itself. Debian's
// azure-cli 2.45 does not ship the extension, and it cannot be installed here (`az extension add`
// downloads it from Microsoft's extension index, which this machine cannot reach), so 2.45 answers
// "'device-identity' is misspelled or not recognized" for these lines: they are not validated.
const EXTENSION_GROUPS = ['iot hub device-identity'];
const fromExtension = (args) => EXTENSION_GROUPS.some((g) => args.join(' ').startsWith(g + ' '));

/** The distinct az command lines of every way the script runs, with stand-ins. */
function recordedCommandLines() {
  const lines = new Map();
  const collect = (box) => {
    for (const c of box.azCalls()) lines.set(JSON.stringify(c.args), c.args);
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
    // Teardown: after confirmation, with --yes, with --no-wait.
    for (const args of [['--yes'], ['--yes', '--no-wait']]) {
      b.setState((s) => { s.has = { 'group/demo-rg': true }; });
      const r = runScript(DEPLOY, ['teardown', '--resource-group', 'demo-rg', ...args], { box: b });
      assert.equal(r.status, 0, r.stderr);
      collect(b);
    }
    // Files named on a command line (the settings file, the zip) are gone by now; the replay
    // gets stand-ins for them, since az reads an @file argument while it parses.
    return [...lines.values()];
  } finally {
    for (const b of boxes) b.cleanup();
  }
}

test('every az command line of deploy.sh is accepted by the real Azure CLI parser', { skip: cliMissing }, async (t) => {
  const commands = recordedCommandLines();
  assert.ok(commands.length > 40, `only ${commands.length} command lines recorded`);
  const kinds = new Set(commands.map((args) => head({ args })));
  for (const k of ['group create', 'signalr create', 'iot hub create', 'functionapp create', 'group delete',
    'functionapp deployment source config-zip', 'signalr update', 'functionapp plan create']) {
    assert.ok(kinds.has(k), `no 'az ${k}' among the recorded lines`);
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-azcli-'));
  try {
    const settings = path.join(dir, 'settings.json');
    writeFileSync(settings, '{"PartitionKey": "Sydney"}\n');
    const source = path.join(dir, 'dashboard');
    mkdirSync(source);
    const replay = commands.map((args) => args.map((a, i) => {
      if (a.startsWith('@')) return `@${settings}`;
      if (args[i - 1] === '--source') return source;
      return a;
    }));
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

    const skipped = [];
    for (const [i, res] of results.entries()) {
      const line = `az ${commands[i].join(' ')}`;
      if (fromExtension(commands[i])) {
        // Not validated, but make sure the CLI turned it down for that reason and no other.
        assert.match(res.message, /is misspelled or not recognized/, line);
        skipped.push(line);
        await t.test(line, { skip: 'azure-iot extension command: Debian azure-cli 2.45 does not include ' +
          'the extension and it cannot be installed offline, so this line is not validated' }, () => {});
        continue;
      }
      await t.test(line, () => {
        assert.ok(res.accepted, `rejected by azure-cli: ${res.message}`);
      });
    }
    t.diagnostic(`${results.length - skipped.length} lines validated, ${skipped.length} azure-iot extension lines not validated`);
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
