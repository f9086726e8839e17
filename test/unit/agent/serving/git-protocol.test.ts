/**
 * What the git port reads of a client's bytes (src/agent/serving/git-protocol.ts): pkt-lines split across
 * chunks, the git:// request line, v2 requests, and which of them name a commit or ref that would make the agent
 * refresh first (and which must not: a clone per glob would otherwise cost a fetch).
 */
import test from 'ava';
import { MAX_PKT_LENGTH, PacketReader, V2RequestCollector, parseRequestLine, requestNeeds } from '../../../../src/agent/serving/git-protocol.js';

const pkt = (text: string): Buffer => Buffer.from(`${(text.length + 4).toString(16).padStart(4, '0')}${text}`, 'latin1');

test('pkt-lines arrive in any chunking; flush, delim and response-end are told apart; bad lengths are invalid', (t) => {
  const stream = Buffer.concat([pkt('command=fetch\n'), Buffer.from('0001'), pkt('want ' + 'a'.repeat(40) + '\n'), Buffer.from('0000'), Buffer.from('0002')]);
  const reader = new PacketReader();
  const kinds: string[] = [];
  for (const byte of stream) {
    reader.push(Buffer.from([byte]));
    for (let packet = reader.next(); packet !== 'incomplete'; packet = reader.next()) {
      if (packet === 'invalid') return t.fail('invalid');
      kinds.push(packet.kind === 'data' ? packet.payload.toString().trim() : packet.kind);
    }
  }
  t.deepEqual(kinds, ['command=fetch', 'delim', `want ${'a'.repeat(40)}`, 'flush', 'response-end']);
  for (const bad of ['zzzz', '0003', (MAX_PKT_LENGTH + 1).toString(16).padStart(4, '0')]) {
    const invalid = new PacketReader();
    invalid.push(Buffer.from(bad + 'xxxx'));
    t.is(invalid.next(), 'invalid', bad);
    t.is(invalid.rest().toString(), bad + 'xxxx', 'the bytes stay, to be passed on unread');
  }
});

test('the request line: service, path, protocol version 2 from the extra parameters', (t) => {
  t.deepEqual(parseRequestLine(Buffer.from('git-upload-pack /0123456789abcdef0123.git\0host=node-svc\0\0version=2\0')), {
    service: 'git-upload-pack',
    path: '/0123456789abcdef0123.git',
    version2: true,
  });
  t.is(parseRequestLine(Buffer.from('git-upload-pack /x.git\0host=h\0'))?.version2, false);
  t.is(parseRequestLine(Buffer.from('git-receive-pack /x.git\0host=h\0'))?.service, 'git-receive-pack');
  t.is(parseRequestLine(Buffer.from('GET / HTTP/1.1')), undefined);
});

function request(command: string, args: string[]) {
  const collector = new V2RequestCollector();
  const packets = [pkt(`command=${command}\n`), pkt('agent=git/2.47\n'), Buffer.from('0001'), ...args.map((arg) => pkt(`${arg}\n`)), Buffer.from('0000')];
  const reader = new PacketReader();
  reader.push(Buffer.concat(packets));
  for (let packet = reader.next(); packet !== 'incomplete' && packet !== 'invalid'; packet = reader.next()) {
    const complete = collector.add(packet);
    if (complete) return { complete, bytes: collector.bytes(), sent: Buffer.concat(packets) };
  }
  throw new Error('no complete request');
}

test('a v2 fetch needs the commits it wants; the request is forwarded byte for byte', (t) => {
  const sha = 'b'.repeat(40);
  const { complete, bytes, sent } = request('fetch', [`want ${sha}`, `want ${sha}`, `have ${'c'.repeat(40)}`, 'deepen 1', 'want not-an-id', 'done']);
  t.deepEqual(requestNeeds(complete), { objects: [sha], refs: [] });
  t.deepEqual(bytes, sent);
  t.deepEqual(requestNeeds(request('fetch', [`want ${'d'.repeat(64)}`]).complete).objects, ['d'.repeat(64)], 'sha256 ids too');
});

test('ls-refs needs the full refs a fetch names outside refs/heads/ and refs/tags/, never a short name\'s expansions or a glob\'s prefix', (t) => {
  const needs = (prefixes: string[]) => requestNeeds(request('ls-refs', ['symrefs', 'peel', ...prefixes.map((prefix) => `ref-prefix ${prefix}`)]).complete).refs;
  // GitLab Runner: +refs/pipelines/42:... +refs/heads/main:...
  t.deepEqual(needs(['refs/pipelines/42', 'refs/heads/main']), ['refs/pipelines/42']);
  t.deepEqual(needs(['refs/merge-requests/7/head']), ['refs/merge-requests/7/head']);
  // `git fetch origin main`: the short name's expansions.
  t.deepEqual(needs(['main', 'refs/main', 'refs/tags/main', 'refs/heads/main', 'refs/remotes/main', 'refs/remotes/main/HEAD']), []);
  // actions/checkout by branch: globs whose prefixes usually match nothing.
  t.deepEqual(needs(['refs/heads/feature', 'refs/tags/feature']), []);
  // A clone: HEAD, branches and tags.
  t.deepEqual(needs(['HEAD', 'refs/heads/', 'refs/tags/']), []);
  t.deepEqual(requestNeeds(request('object-info', ['size']).complete), { objects: [], refs: [] });
});
