// The stand-in's WebSocket transport and JSON hub protocol, byte by byte: a small RFC 6455 client
// written here (masking, fragments, control frames) checks what the official client never does.
import { createHash, randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { mintJwt, sleep, startStandin } from '../lib/harness.mjs';

const HUB = 'enviromon';
const RS = '\x1e';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };
const now = () => Math.floor(Date.now() / 1000);


const clientToken = (s, user = null, hub = HUB) =>
  mintJwt(s.accessKey, { aud: `${s.endpoint}/client/?hub=${hub}`, exp: now() + 300, ...(user ? { 'asrs.s.uid': user } : {}) });


async function negotiate(s, user = null) {
  const res = await fetch(`${s.endpoint}/client/negotiate?hub=${HUB}&negotiateVersion=1`, {
    method: 'POST', headers: { Authorization: `Bearer ${clientToken(s, user)}` },
  });
  assert.equal(res.status, 200);
  return res.json();
}

async function broadcast(s, args, path = `/api/v1/hubs/${HUB}`) {
  const url = `${s.endpoint}${path}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${mintJwt(s.accessKey, { aud: url, exp: now() + 60 })}` },
    body: JSON.stringify({ target: 'newMessage', arguments: args }),
  });
  await res.text();
  return res.status;
}

/** A WebSocket client over a plain TCP socket. */
class RawWs {
  static async open(s, { id, token, user = null, tokenIn = 'query', target = null } = {}) {
    if (id === undefined) id = (await negotiate(s, user)).connectionToken;
    if (token === undefined) token = clientToken(s, user);
    const sock = net.connect(s.port, '127.0.0.1');
    await once(sock, 'connect');
    const ws = new RawWs(sock);
    const key = randomBytes(16).toString('base64');
    let path = target || `/client/?hub=${HUB}&id=${encodeURIComponent(id)}`;
    const headers = [`Host: 127.0.0.1:${s.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'];
    if (token && tokenIn === 'query') path += `&access_token=${encodeURIComponent(token)}`;
    if (token && tokenIn === 'header') headers.push(`Authorization: Bearer ${token}`);
    sock.write(`GET ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
    await ws.readHead();
    ws.expectedAccept = createHash('sha1').update(key + GUID).digest('base64');
    return ws;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.waiters = [];
    this.records = [];
    this.partial = '';
    sock.on('data', (d) => {
      if (!this.discard) this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => { this.ended = true; this.wake(); });
    sock.on('error', () => {});
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  /** Waits until parse() returns something other than undefined, or the socket ends. */
  async until(parse, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = parse();
      if (r !== undefined) return r;
      if (this.ended) return null;
      if (Date.now() > deadline) throw new Error(`nothing within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async readHead() {
    const head = await this.until(() => {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const text = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      return text;
    });
    assert.ok(head, 'no HTTP answer');
    const [statusLine, ...lines] = head.split('\r\n');
    this.status = Number(statusLine.split(' ')[1]);
    this.headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  }

  /** The next frame from the server: { fin, opcode, payload }, or null once the socket ended. */
  frame(timeoutMs) {
    return this.until(() => {
      const b = this.buf;
      if (b.length < 2) return undefined;
      assert.equal(b[1] & 0x80, 0, 'server frames are not masked');
      assert.equal(b[0] & 0x70, 0, 'no RSV bits');
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (b.length < 4) return undefined; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) return undefined; len = Number(b.readBigUInt64BE(2)); off = 10; }
      if (b.length < off + len) return undefined;
      const f = { fin: !!(b[0] & 0x80), opcode: b[0] & 0x0f, payload: b.subarray(off, off + len) };
      this.buf = b.subarray(off + len);
      return f;
    }, timeoutMs);
  }

  /** The next hub protocol record (parsed JSON), skipping pings unless asked for. */
  async record({ pings = false, timeoutMs = 10000 } = {}) {
    for (;;) {
      while (this.records.length) {
        const r = this.records.shift();
        if (pings || r.type !== 6) return r;
      }
      const f = await this.frame(timeoutMs);
      if (!f) return null;
      if (f.opcode === OP.close) { this.closeFrame = f; return null; }
      assert.equal(f.opcode, OP.text);
      assert.ok(f.fin, 'server messages are single frames');
      const text = this.partial + f.payload.toString('utf8');
      const parts = text.split(RS);
      this.partial = parts.pop();
      for (const p of parts) this.records.push(JSON.parse(p));
    }
  }

  /** The close frame, answered as a client does: skips data frames. Returns { code, reason },
   * or null when none came. */
  async closed() {
    let f = this.closeFrame;
    while (!f) {
      f = await this.frame();
      if (!f) return null;
      if (f.opcode !== OP.close) f = null;
    }
    if (!this.sock.destroyed) this.send(OP.close, f.payload.subarray(0, 2));
    return parseClose(f);
  }

  send(opcode, payload, { fin = true, mask = true, rsv = 0, length = null } = {}) {
    const data = Buffer.from(payload);
    const len = length ?? data.length;
    const head = [((fin ? 0x80 : 0) | rsv | opcode)];
    const m = mask ? 0x80 : 0;
    if (len < 126) head.push(m | len);
    else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
    else { head.push(m | 127); const l = Buffer.alloc(8); l.writeBigUInt64BE(BigInt(len)); head.push(...l); }
    const key = randomBytes(4);
    const body = mask ? Buffer.from(data.map((x, i) => x ^ key[i & 3])) : data;
    this.sock.write(Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]));
  }

  sendRecord(obj) { this.send(OP.text, JSON.stringify(obj) + RS); }

  async handshake() {
    this.sendRecord({ protocol: 'json', version: 1 });
    assert.deepEqual(await this.record(), {});
  }

  async waitEnd() { await this.until(() => (this.ended ? true : undefined)); return this.ended; }

  destroy() { this.sock.destroy(); }
}

function parseClose(f) {
  return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString() };
}

describe('WebSocket transport and JSON hub protocol', () => {
  let s;
  const opened = [];
  const open = async (opts) => { const ws = await RawWs.open(s, opts); opened.push(ws); return ws; };
  before(async () => { s = await startStandin({ args: ['--ping-seconds', '1'] }); });
  afterEach(() => { for (const ws of opened.splice(0)) ws.destroy(); });
  after(async () => { assert.deepEqual(await s.stop(), { code: 0, signal: null }); });

  test('upgrade answer, handshake, pings, and REST messages in the JSON hub format', async () => {
    const ws = await open();
    assert.equal(ws.status, 101);
    assert.equal(ws.headers['sec-websocket-accept'], ws.expectedAccept);
    assert.equal(ws.headers.upgrade.toLowerCase(), 'websocket');
    await ws.handshake();
    assert.deepEqual(await ws.record({ pings: true }), { type: 6 });
    assert.deepEqual(await ws.record({ pings: true }), { type: 6 });
    assert.equal(await broadcast(s, [{ a: 1, b: [true, null, 'é'] }, 2.5]), 202);
    assert.deepEqual(await ws.record(), { type: 1, target: 'newMessage', arguments: [{ a: 1, b: [true, null, 'é'] }, 2.5] });
    // The 2022-06-01 REST form is served too.
    assert.equal(await broadcast(s, ['send form'], `/api/hubs/${HUB}/:send`), 202);
    assert.deepEqual(await ws.record(), { type: 1, target: 'newMessage', arguments: ['send form'] });
  });

  test('the access token may come in the Authorization header', async () => {
    const ws = await open({ tokenIn: 'header' });
    assert.equal(ws.status, 101);
    await ws.handshake();
  });

  test('fragmented messages and records split across messages', async () => {
    const ws = await open();
    const hs = JSON.stringify({ protocol: 'json', version: 1 }) + RS;
    ws.send(OP.text, hs.slice(0, 5), { fin: false });
    ws.send(OP.ping, 'between fragments');
    ws.send(OP.cont, hs.slice(5, 9), { fin: false });
    ws.send(OP.cont, hs.slice(9));
    const pong = await ws.frame();
    assert.equal(pong.opcode, OP.pong);
    assert.equal(pong.payload.toString(), 'between fragments');
    assert.deepEqual(await ws.record(), {});
    const inv = JSON.stringify({ type: 1, invocationId: 'abc', target: 'Echo', arguments: [1] }) + RS;
    ws.send(OP.text, inv.slice(0, 12));
    ws.send(OP.text, inv.slice(12) + JSON.stringify({ type: 6 }) + RS);
    const completion = await ws.record();
    assert.equal(completion.type, 3);
    assert.equal(completion.invocationId, 'abc');
    assert.equal(typeof completion.error, 'string');
    // An invocation without an id expects nothing; the connection goes on.
    ws.sendRecord({ type: 1, target: 'Fire', arguments: [] });
    assert.equal(await broadcast(s, ['after']), 202);
    assert.deepEqual((await ws.record()).arguments, ['after']);
  });

  test('an unsupported protocol gets an error answer and a close', async () => {
    const ws = await open();
    ws.sendRecord({ protocol: 'messagepack', version: 1 });
    const answer = await ws.record();
    assert.equal(typeof answer.error, 'string');
    assert.match(answer.error, /messagepack/);
    assert.equal((await ws.closed()).code, 1000);
    assert.ok(await ws.waitEnd());
  });

  test('protocol errors close with the right code', async () => {
    const cases = [
      ['unmasked frame', (ws) => ws.send(OP.text, 'x', { mask: false }), 1002],
      ['RSV bit', (ws) => ws.send(OP.text, 'x', { rsv: 0x40 }), 1002],
      ['reserved opcode', (ws) => ws.send(3, 'x'), 1002],
      ['stray continuation', (ws) => ws.send(OP.cont, 'x'), 1002],
      ['fragmented ping', (ws) => ws.send(OP.ping, 'x', { fin: false }), 1002],
      ['invalid UTF-8', (ws) => ws.send(OP.text, Buffer.from([0x7b, 0xc3, 0x28])), 1007],
      ['message over 1 MiB', (ws) => ws.send(OP.binary, '', { length: 2 * 1024 * 1024 }), 1009],
    ];
    for (const [name, act, code] of cases) {
      const ws = await open();
      assert.equal(ws.status, 101);
      await ws.handshake();
      act(ws);
      const c = await ws.closed();
      assert.ok(c, `${name}: no close frame`);
      assert.equal(c.code, code, name);
      assert.ok(await ws.waitEnd(), `${name}: socket still open`);
    }
  });

  test('closing: a close frame is answered, a hub close message closes', async () => {
    const a = await open();
    await a.handshake();
    const reason = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]);
    a.send(OP.close, reason);
    assert.equal((await a.closed()).code, 1000);
    assert.ok(await a.waitEnd());

    const b = await open();
    await b.handshake();
    b.sendRecord({ type: 7 });
    assert.equal((await b.closed()).code, 1000);
    assert.ok(await b.waitEnd());
  });

  test('refusals: unknown, reused or mismatched connection tokens and bad access tokens', async () => {
    assert.equal((await open({ id: 'never-negotiated' })).status, 404);
    const neg = await negotiate(s);
    const first = await open({ id: neg.connectionToken });
    assert.equal(first.status, 101);
    assert.equal((await open({ id: neg.connectionToken })).status, 404, 'a token works once');
    // The connection id is not the token.
    assert.equal((await open({ id: (await negotiate(s)).connectionId })).status, 404);
    const alice = await negotiate(s, 'alice');
    assert.equal((await open({ id: alice.connectionToken, user: 'mallory' })).status, 403);
    assert.equal((await open({ token: mintJwt('wrong', { aud: `${s.endpoint}/client/?hub=${HUB}`, exp: now() + 60 }) })).status, 401);
    assert.equal((await open({ token: mintJwt(s.accessKey, { aud: `${s.endpoint}/client/?hub=${HUB}`, exp: now() - 60 }) })).status, 401);
    assert.equal((await open({ token: null })).status, 401);
    assert.equal((await open({ target: `/client/?hub=${HUB}` })).status, 400);
  });

  test('a client that does not read is dropped; REST calls never wait for it', { timeout: 120000 }, async () => {
    const slow = await open();
    await slow.handshake();
    const neg = await negotiate(s);
    const fast = await open({ id: neg.connectionToken });
    await fast.handshake();
    slow.sock.pause(); // its socket buffers fill, then its queue in the stand-in
    const big = 'x'.repeat(900 * 1024);
    let dropped = false;
    for (let i = 0; i < 200 && !dropped; i++) {
      assert.equal(await broadcast(s, [i, big]), 202);
      // The other client gets everything, in order.
      assert.equal((await fast.record()).arguments[0], i);
      dropped = /dropped/.test(s.logs.text);
    }
    assert.ok(dropped, 'the slow client was dropped');
    assert.equal(await broadcast(s, ['last']), 202);
    assert.deepEqual((await fast.record()).arguments, ['last']);
    slow.discard = true; // tens of MB wait in the socket buffers: skip them
    slow.sock.resume();
    assert.ok(await slow.waitEnd());
    assert.equal((await fetch(`${s.endpoint}/api/v1/hubs/${HUB}/connections/x`)).status, 401);
  });
});

describe('shutdown', () => {
  test('SIGTERM sends a hub close allowing reconnect and a 1001 close frame, then exits 0', async () => {
    const s = await startStandin();
    const ws = await RawWs.open(s);
    await ws.handshake();
    const exited = s.stop();
    assert.deepEqual(await ws.record(), { type: 7, allowReconnect: true });
    assert.equal((await ws.closed()).code, 1001);
    assert.ok(await ws.waitEnd());
    assert.deepEqual(await exited, { code: 0, signal: null });
    await sleep(0);
  });
});
