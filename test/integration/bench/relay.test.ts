/**
 * The benchmarks' delay relay (bench/clone/relay.mjs) must deliver every byte, in order, with the end of the
 * stream after the last byte: an earlier version scheduled a timer per chunk, and timers of different lengths
 * reordered chunks of large transfers (git then failed with "bad line length" or "invalid index-pack output").
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const RELAY = fileURLToPath(new URL('../../../bench/clone/relay.mjs', import.meta.url));

test('a 64 MiB stream written in random-sized chunks arrives byte for byte through the relay', async (t) => {
  const data = randomBytes(64 << 20);
  const server = createServer((socket) => {
    let offset = 0;
    const writeMore = (): void => {
      while (offset < data.length) {
        const size = 1 + Math.floor(Math.random() * 200_000);
        const more = socket.write(data.subarray(offset, offset + size));
        offset += size;
        if (!more) {
          socket.once('drain', writeMore);
          return;
        }
      }
      socket.end();
    };
    writeMore();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const target = (server.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const listen = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const relay = spawn(process.execPath, [RELAY, '--listen', `127.0.0.1:${listen}`, '--target', `127.0.0.1:${target}`, '--delay-ms', '5', '--rate-mbit', '4000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    relay.kill();
    server.close();
  });
  await new Promise((resolve) => relay.stdout.once('data', resolve));

  const received = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const client = connect(listen, '127.0.0.1');
    client.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    client.on('end', () => resolve({ bytes, sha: hash.digest('hex') }));
    client.on('error', reject);
  });
  t.is(received.bytes, data.length);
  t.is(received.sha, createHash('sha256').update(data).digest('hex'));
});
