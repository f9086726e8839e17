#!/usr/bin/env node
// A TCP relay that adds one-way latency (and, optionally, a rate limit) in both directions: the stand-in for
// `tc netem` on kernels built without sch_netem. Each chunk is released `delay` ms after it arrived, and no
// earlier than the link needs to serialise the chunks before it at `rate` (a token bucket with no burst), so
// every protocol round trip pays the RTT and bulk data cannot exceed the rate. Plain JavaScript with no
// dependencies, so it runs with `ip netns exec NS node relay.mjs` inside the upstream's network namespace.
//
//   node relay.mjs --listen HOST:PORT --target HOST:PORT --delay-ms 10 [--rate-mbit 50] [--stats-port N]
//
// With --stats-port it answers GET /stats on 127.0.0.1 with the bytes relayed each way (loopback-only mode,
// where there is no veth whose counters could be read).
import { createServer, connect } from 'node:net';
import { createServer as createHttpServer } from 'node:http';

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  return process.argv[index + 1];
}

function hostPort(value) {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
}

const listen = hostPort(option('listen'));
const target = hostPort(option('target'));
const delayMs = Number(option('delay-ms', '0'));
const rateBytesPerMs = (Number(option('rate-mbit', '0')) * 1e6) / 8 / 1000;
const statsPort = option('stats-port');
/** Paused reading above this much data in flight, so a fast server cannot balloon the relay's memory. */
const HIGH_WATER = 4 << 20;

const totals = { toServer: 0, toClient: 0, connections: 0 };

/** One direction of the link: a FIFO with release times; shared by all connections, as one wire would be. */
function makeLink() {
  let busyUntil = 0;
  return (size) => {
    const now = performance.now();
    const serialise = rateBytesPerMs > 0 ? size / rateBytesPerMs : 0;
    const start = Math.max(now, busyUntil);
    busyUntil = start + serialise;
    return busyUntil + delayMs - now;
  };
}
const upLink = makeLink();
const downLink = makeLink();

function pipe(from, to, link, counter, handshakeMs = 0) {
  // The client's first bytes wait one extra RTT: the TCP handshake, which reaches the relay undelayed.
  let extraMs = handshakeMs;
  let inFlight = 0;
  // One FIFO per direction, drained by one timer at a time: chunks (and the end of the stream) leave in the
  // order they came. A timer per chunk could fire out of order (Node groups timers by duration), which
  // reordered bytes of large transfers ("bad line length", "invalid index-pack output").
  const queue = [];
  let timer;
  const backlog = () => inFlight + to.writableLength;
  const maybeResume = () => {
    if (backlog() <= HIGH_WATER && from.isPaused()) from.resume();
  };
  const release = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0].at <= now) {
      const entry = queue.shift();
      if (entry.chunk === undefined) {
        to.end();
        continue;
      }
      inFlight -= entry.chunk.length;
      totals[counter] += entry.chunk.length;
      if (!to.destroyed) to.write(entry.chunk);
    }
    maybeResume();
    armTimer();
  };
  const armTimer = () => {
    if (timer === undefined && queue.length > 0) timer = setTimeout(release, Math.max(0, queue[0].at - performance.now()));
  };
  const enqueue = (wait, chunk) => {
    // Release times are monotonic, so the head of the queue is always the next to leave.
    const last = queue.length > 0 ? queue[queue.length - 1].at : 0;
    queue.push({ at: Math.max(performance.now() + wait, last), chunk });
    armTimer();
  };
  to.on('drain', maybeResume);
  from.on('data', (chunk) => {
    inFlight += chunk.length;
    if (backlog() > HIGH_WATER) from.pause();
    const wait = link(chunk.length) + extraMs;
    extraMs = 0;
    enqueue(wait, chunk);
  });
  let ended = false;
  from.on('end', () => {
    ended = true;
    enqueue(delayMs, undefined);
  });
  from.on('close', () => {
    if (!ended) {
      clearTimeout(timer);
      queue.length = 0;
      to.destroy();
    }
  });
  from.on('error', () => to.destroy());
}

const server = createServer({ noDelay: true }, (client) => {
  totals.connections += 1;
  client.setNoDelay(true);
  const upstream = connect({ host: target.host, port: target.port, noDelay: true });
  pipe(client, upstream, upLink, 'toServer', 2 * delayMs);
  pipe(upstream, client, downLink, 'toClient');
});
server.listen(listen.port, listen.host, () => {
  process.stdout.write(`relay listening on ${listen.host}:${listen.port} -> ${target.host}:${target.port}\n`);
});

if (statsPort) {
  createHttpServer((request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(totals));
  }).listen(Number(statsPort), '127.0.0.1');
}

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
