#!/usr/bin/env node
// TEST-ONLY "admin-party front" for `make compat` (scripts/compat.sh).
//
// Some third-party suites hardcode http://localhost:5984 and assume CouchDB's
// old admin party (every anonymous request is an admin). Settee has no admin
// party, so this front listens on 127.0.0.1:5984 (and ::1 when the machine
// has it), forwards every request to Settee unchanged, and adds
// `Authorization: Basic <admin>` to requests that carry neither an
// Authorization header nor a non-empty AuthSession cookie. Requests that bring
// their own credentials (or a session) reach Settee exactly as sent.
// Never run this in front of a real deployment: it makes every anonymous
// client an admin.
//
// Bodies are streamed both ways (continuous _changes feeds, long polls,
// attachments); status codes and headers pass through, except hop-by-hop
// headers, which Node sets for each connection. WebSocket upgrades are piped.
// With --log, each request is logged with its status and time; for answers >= 400 also the
// first 400 bytes of the request and response bodies.
//
// usage: node scripts/compat-front.mjs --upstream http://127.0.0.1:PORT
//          [--port 5984] [--user admin:password|none] [--log FILE] [--v6 yes|no]
// `--user none` adds nothing: a transparent, logging proxy (compat.sh's COMPAT_TRACE=1).
// Plain Node (no dependencies). Exits 1 with a clear message when the port
// is taken. Prints "compat-front: listening on ..." once it accepts requests.

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';

const args = process.argv.slice(2);
const opt = { port: '5984', user: 'admin:password', upstream: null, log: null, v6: 'yes' };
for (let i = 0; i < args.length; i += 2) {
  const k = args[i].replace(/^--/, '');
  if (!(k in opt) || args[i + 1] === undefined) {
    console.error(`compat-front: bad argument ${args[i]}\n` +
      'usage: compat-front.mjs --upstream http://127.0.0.1:PORT [--port 5984] [--user admin:password] [--log FILE]');
    process.exit(2);
  }
  opt[k] = args[i + 1];
}
if (!opt.upstream) {
  console.error('compat-front: --upstream is required');
  process.exit(2);
}
const up = new URL(opt.upstream);
const upHost = up.hostname.replace(/^\[|\]$/g, '');
const upPort = Number(up.port || 80);
const port = Number(opt.port);
const basic = opt.user === 'none' ? null : 'Basic ' + Buffer.from(opt.user).toString('base64');
const logStream = opt.log ? fs.createWriteStream(opt.log, { flags: 'a' }) : null;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

// Connection-level headers: each hop sets its own.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
  'te', 'trailer', 'upgrade', 'expect']);

function hasSession(cookieHeaders) {
  return cookieHeaders.some((c) => /(?:^|;\s*)AuthSession=[^;\s]/.test(c));
}

// rawHeaders (name, value, name, value...) -> same, with hop-by-hop removed
// and the admin's credentials added when the request has none.
function requestHeaders(req) {
  const out = [];
  let auth = false;
  const cookies = [];
  const connTokens = (req.headers.connection || '').toLowerCase().split(',').map((s) => s.trim());
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    const lower = name.toLowerCase();
    if (lower === 'authorization') auth = true;
    if (lower === 'cookie') cookies.push(value);
    if (HOP.has(lower) || connTokens.includes(lower)) continue;
    out.push(name, value);
  }
  const injected = basic !== null && !auth && !hasSession(cookies);
  if (injected) out.push('Authorization', basic);
  return { headers: out, injected };
}

function responseHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (HOP.has(raw[i].toLowerCase())) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

function log(line) {
  if (logStream) logStream.write(`${new Date().toISOString()} ${line}\n`);
}

// For the log: the first bytes of a body (request bodies and error answers are logged).
const KEEP = 400;
function sample(stream) {
  const s = { chunks: [], n: 0 };
  if (logStream) {
    stream.on('data', (c) => {
      if (s.n < KEEP) { s.chunks.push(c.subarray(0, KEEP - s.n)); s.n += Math.min(c.length, KEEP - s.n); }
    });
  }
  return () => JSON.stringify(Buffer.concat(s.chunks).toString('utf8'));
}

function handle(req, res) {
  const t0 = Date.now();
  const { headers, injected } = requestHeaders(req);
  const reqBody = sample(req);
  const upReq = http.request({
    host: upHost, port: upPort, method: req.method, path: req.url, headers, agent,
  });
  let logged = false;
  let status = '-';
  upReq.on('response', (upRes) => {
    status = upRes.statusCode;
    res.writeHead(upRes.statusCode, upRes.statusMessage, responseHeaders(upRes.rawHeaders));
    // Long feeds: send every chunk as it arrives.
    res.flushHeaders();
    const resBody = upRes.statusCode >= 400 ? sample(upRes) : null;
    upRes.pipe(res);
    upRes.on('end', () => {
      let line = `${req.method} ${req.url} ${upRes.statusCode} ${Date.now() - t0}ms${injected ? ' +admin' : ''}`;
      if (resBody) line += ` request-body=${reqBody()} response-body=${resBody()}`;
      logged = true;
      log(line);
    });
    upRes.on('error', () => res.destroy());
  });
  upReq.on('error', (e) => {
    logged = true;
    log(`${req.method} ${req.url} upstream-error ${e.code || e.message}`);
    if (!res.headersSent) {
      res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad_gateway', reason: `compat-front: ${e.message}` }) + '\n');
    } else {
      res.destroy();
    }
  });
  // The client went away (e.g. it closed a continuous feed): drop the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) upReq.destroy();
    if (!logged) {
      logged = true;
      log(`${req.method} ${req.url} ${status} ${Date.now() - t0}ms${injected ? ' +admin' : ''} closed-by-client-before-the-end`);
    }
  });
  req.pipe(upReq);
}

function upgrade(req, socket, head) {
  const { headers } = requestHeaders(req);
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  // Upgrade requests need their Connection/Upgrade headers.
  lines.push(`Connection: ${req.headers.connection || 'Upgrade'}`);
  if (req.headers.upgrade) lines.push(`Upgrade: ${req.headers.upgrade}`);
  const upSock = net.connect(upPort, upHost, () => {
    upSock.write(lines.join('\r\n') + '\r\n\r\n');
    if (head && head.length) upSock.write(head);
    upSock.pipe(socket);
    socket.pipe(upSock);
  });
  const close = () => { upSock.destroy(); socket.destroy(); };
  upSock.on('error', close);
  socket.on('error', close);
  log(`${req.method} ${req.url} upgrade`);
}

function listen(host) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handle);
    // Feeds and long polls stay open as long as the client wants.
    server.requestTimeout = 0;
    server.headersTimeout = 0;
    server.timeout = 0;
    server.keepAliveTimeout = 60_000;
    server.on('upgrade', upgrade);
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

const servers = [];
try {
  servers.push(await listen('127.0.0.1'));
} catch (e) {
  if (e.code === 'EADDRINUSE') {
    console.error(`compat-front: 127.0.0.1:${port} is already in use. The suites that hardcode ` +
      `localhost:${port} need it: stop whatever listens there (e.g. \`make dev\`, a CouchDB) and retry.`);
  } else {
    console.error(`compat-front: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  }
  process.exit(1);
}
if (opt.v6 !== 'no') try {
  servers.push(await listen('::1'));
} catch (e) {
  if (e.code === 'EADDRINUSE') {
    console.error(`compat-front: [::1]:${port} is already in use; stop whatever listens there and retry.`);
    process.exit(1);
  }
  // No IPv6 loopback on this machine: localhost is 127.0.0.1 only.
}
console.log(`compat-front: listening on ${servers.map((s) => {
  const a = s.address();
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}).join(' and ')}, forwarding to ${up.origin}${basic ? ' (TEST ONLY: anonymous requests become the admin)' : ' (transparent)'}`);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    for (const s of servers) s.close();
    if (logStream) logStream.end();
    process.exit(0);
  });
}
