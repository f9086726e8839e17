/**
 * A pod's own network for the pod runner: a network namespace joined to this one by a veth pair on a /30 of
 * 198.19.0.0/16 (a benchmarking range; the subnet follows the test process's pid, so parallel runs do not
 * collide, and nothing leaves the machine). Servers that pods must reach listen on `gateway`.
 *
 * "No route to upstream" for an app container: `ip rule ... uidrange U-U unreachable` inside the namespace makes
 * every route lookup of that UID fail (ENETUNREACH), except for local addresses (the `local` table is looked
 * up first): the pod's loopback still works, so its containers reach their sidecar, but the app cannot open a
 * connection to anything outside the pod. The cache container's UID keeps the route.
 */
import { execFileSync } from 'node:child_process';
import { findTool } from './tools.js';

export interface PodNetwork {
  /** `ip netns` name (for RunPodOptions.netns). */
  readonly name: string;
  /** The host side of the link: where servers listen for the pod. */
  readonly gateway: string;
  /** The pod's address. */
  readonly address: string;
  remove(): void;
}

function ip(args: string[]): void {
  execFileSync(findTool('ip') ?? 'ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh pod network; `noRouteUids` get no route out of the pod. `slot` tells two networks of one process apart. */
export function createPodNetwork(options: { noRouteUids?: readonly number[]; slot?: number } = {}): PodNetwork {
  const id = (process.pid % 4000) * 16 + (options.slot ?? 0);
  const third = Math.floor(id / 64) % 256;
  const base = (id % 64) * 4;
  const name = `gcpod${id}`;
  const host = `gch${id}`;
  const peer = `gcp${id}`;
  const gateway = `198.19.${third}.${base + 1}`;
  const address = `198.19.${third}.${base + 2}`;
  const remove = (): void => {
    for (const args of [['netns', 'del', name], ['link', 'del', host]]) {
      try {
        ip(args);
      } catch {
        // already gone
      }
    }
  };
  remove();
  try {
    ip(['netns', 'add', name]);
    ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    ip(['link', 'set', peer, 'netns', name]);
    ip(['addr', 'add', `${gateway}/30`, 'dev', host]);
    ip(['link', 'set', host, 'up']);
    ip(['-n', name, 'addr', 'add', `${address}/30`, 'dev', peer]);
    ip(['-n', name, 'link', 'set', peer, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    for (const uid of options.noRouteUids ?? []) ip(['-n', name, 'rule', 'add', 'uidrange', `${uid}-${uid}`, 'priority', '100', 'unreachable']);
  } catch (error) {
    remove();
    throw error;
  }
  return { name, gateway, address, remove };
}
