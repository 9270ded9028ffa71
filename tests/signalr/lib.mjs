// Helpers for the SignalR tests: an official @microsoft/signalr client that negotiates through the
// handler and keeps what it receives, and a JWT claims decoder.
import * as signalR from '@microsoft/signalr';
import { createRequire } from 'node:module';

// The client's Node HTTP client hands a tough-cookie jar to fetch-cookie, which needs tough-cookie
// 4; npm may hoist Azurite's 2.x instead, and then every negotiate fails ("reading 'secure'").
// In that case the client gets an HttpClient over Node's own fetch (an option the client offers;
// negotiation and the transports stay the client's own).
function cookieJarWorks() {
  try {
    const req = createRequire(createRequire(import.meta.url).resolve('@microsoft/signalr'));
    return Number(req('tough-cookie/package.json').version.split('.')[0]) >= 4;
  } catch {
    return false;
  }
}

class NodeFetchClient extends signalR.HttpClient {
  async send(request) {
    const abort = new AbortController();
    if (request.abortSignal) request.abortSignal.onabort = () => abort.abort();
    const timer = request.timeout ? setTimeout(() => abort.abort(), request.timeout) : null;
    try {
      const res = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.content || undefined,
        signal: abort.signal,
      });
      const body = request.responseType === 'arraybuffer' ? await res.arrayBuffer() : await res.text();
      if (!res.ok) throw new signalR.HttpError(res.statusText || `HTTP ${res.status}`, res.status);
      return new signalR.HttpResponse(res.status, res.statusText, body);
    } catch (e) {
      if (abort.signal.aborted) throw new signalR.AbortError();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

const clientOptions = cookieJarWorks() ? {} : { httpClient: new NodeFetchClient() };

/** Connects a client through `${handlerUrl}/api/negotiate`; resolves once connected. */
export async function connectClient(handlerUrl, { headers = {} } = {}) {
  const inbox = [];
  const waiters = new Set();
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${handlerUrl}/api`, { headers, ...clientOptions })
    .configureLogging(signalR.LogLevel.Error)
    .build();
  conn.on('newMessage', (...args) => {
    inbox.push({ at: performance.now(), args });
    for (const w of [...waiters]) w();
  });
  await conn.start();
  return {
    conn,
    inbox,
    get id() { return conn.connectionId; },
    /** Resolves with the first message from index `from` on that pred accepts. */
    waitFor(pred, timeoutMs = 5000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < inbox.length; i++) {
            if (pred(inbox[i].args)) {
              clearTimeout(deadline);
              waiters.delete(check);
              resolve(inbox[i]);
              return;
            }
          }
        };
        const deadline = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching newMessage within ${timeoutMs} ms; got ${JSON.stringify(inbox.slice(-5))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => conn.stop(),
  };
}

/** The claims of a JWT (not verified). */
export function claims(token) {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}
