// Helpers for the SignalR tests: an official @microsoft/signalr client that negotiates through the
// handler and keeps what it receives, and a JWT claims decoder.
import * as signalR from '@microsoft/signalr';

/** Connects a client through `${handlerUrl}/api/negotiate`; resolves once connected. */
export async function connectClient(handlerUrl, { headers = {} } = {}) {
  const inbox = [];
  const waiters = new Set();
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${handlerUrl}/api`, { headers })
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
