// A proxy in front of Azurite that stands in for what only Azure does (a test double for Azure,
// not for Azurite): a hook sees every request and may answer it itself; anything it leaves is
// forwarded to Azurite unchanged. Helpers read the operations of a $batch request and write the
// answer Azure gives when one operation of a transaction fails: 202 Accepted, one changeset
// response holding only the failed operation's response, whose message starts with its index
// ("Performing entity group transactions", Azure Storage REST reference, learn.microsoft.com/
// rest/api/storageservices/performing-entity-group-transactions, read 2026-12-02: "the response
// ... contains ... the index of the operation that failed").
import http from 'node:http';

/** The operations of a $batch request body: [{ method, url, text }] in request order. */
export function batchOps(body) {
  const m = /boundary=(changeset_[^\r\n;]+)/.exec(body);
  if (!m) return [];
  return body.split(`--${m[1]}`).slice(1).filter((p) => !p.startsWith('--')).map((text) => {
    const line = /\r\n\r\n([A-Z]+) (\S+) HTTP\/1\.1/.exec(text);
    return { method: line?.[1], url: line ? decodeURIComponent(line[2]) : '', text };
  });
}

/** Azure's answer to a transaction whose operation `index` failed with status and code. */
export function batchFailure(res, index, status, code, message = 'refused by the test proxy') {
  const b = 'batchresponse_test', c = 'changesetresponse_test';
  const body = JSON.stringify({ 'odata.error': { code, message: { lang: 'en-US', value: `${index}:${message}` } } });
  const text = `--${b}\r\nContent-Type: multipart/mixed; boundary=${c}\r\n\r\n` +
    `--${c}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n` +
    `HTTP/1.1 ${status} Bad Request\r\nContent-ID: ${index + 1}\r\nX-Content-Type-Options: nosniff\r\n` +
    'Cache-Control: no-cache\r\nDataServiceVersion: 3.0;\r\n' +
    'Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n\r\n' +
    `${body}\r\n--${c}--\r\n--${b}--\r\n`;
  res.writeHead(202, { 'Content-Type': `multipart/mixed; boundary=${b}`, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Starts the proxy. hook(req, body (Buffer), res, forward) may answer res itself and return
 * true; forward(onAnswer?) sends the request on to Azurite (onAnswer(upstreamRes, res) may take
 * over the answer). Resolves with { port, connectionString, close }. */
export async function startTableProxy(az, hook) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = (onAnswer) => {
        const up = http.request({ host: '127.0.0.1', port: az.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
          if (onAnswer) return onAnswer(ur, res);
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => { res.writeHead(502); res.end(); });
        up.end(body);
      };
      if (!hook(req, body, res, forward)) forward();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const connectionString = az.connectionString.replace(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+/, `TableEndpoint=http://127.0.0.1:${port}`);
  if (connectionString === az.connectionString) throw new Error('no TableEndpoint in the connection string');
  return {
    port, connectionString,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
