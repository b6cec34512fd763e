// SSRF guard for every outbound request made on a user's behalf (image URLs, webhooks).
// Only globally routable unicast addresses are allowed, unless the allowlist names the host or the address.
// `guardedLookup` is passed to http(s).request as its `lookup`, so the address that was checked is the
// address the socket connects to: a DNS answer that changes between check and connect (rebinding) cannot
// slip through.
import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

export class SsrfError extends Error {
  constructor(
    message: string,
    readonly host: string,
    readonly address?: string,
  ) {
    super(message);
  }
}

export interface Allowlist {
  hosts: Set<string>;
  suffixes: string[];
  cidrs: [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

/** Entries: exact host names, "*.example.com" wildcards, IP addresses or CIDRs. */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  const list: Allowlist = { hosts: new Set(), suffixes: [], cidrs: [] };
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    if (e.startsWith('*.')) list.suffixes.push(e.slice(1));
    else if (e.includes('/')) list.cidrs.push(ipaddr.parseCIDR(e));
    else if (ipaddr.isValid(e)) {
      const a = ipaddr.parse(e);
      list.cidrs.push([a, a.kind() === 'ipv4' ? 32 : 128]);
    } else list.hosts.add(e);
  }
  return list;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function hostAllowlisted(host: string, list: Allowlist): boolean {
  const h = stripBrackets(host.toLowerCase()).replace(/\.$/, '');
  if (list.hosts.has(h) || list.suffixes.some((s) => h.endsWith(s))) return true;
  return net.isIP(h) !== 0 && addressAllowlisted(h, list);
}

function addressAllowlisted(address: string, list: Allowlist): boolean {
  const a = ipaddr.process(address);
  return list.cidrs.some(([net, bits]) => a.kind() === net.kind() && a.match(net, bits));
}

/** Why an address is not public, or null when it is ordinary global unicast. */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  // ipaddr.process turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 address it carries.
  const a = ipaddr.process(address);
  const range = a.range();
  return range === 'unicast' ? null : range;
}

/** Throws SsrfError unless `address` may be contacted for `host`. */
export function checkAddress(host: string, address: string, list: Allowlist): void {
  if (hostAllowlisted(host, list) || addressAllowlisted(address, list)) return;
  const range = nonPublicRange(address);
  if (range) throw new SsrfError(`${host} resolves to ${address} (${range}), which is not allowed`, host, address);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net/http/https that resolves, refuses non-public answers and returns only checked ones. */
export function guardedLookup(list: Allowlist) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      try {
        if (addresses.length === 0) throw new SsrfError(`${hostname} has no addresses`, hostname);
        // Every answer must pass: otherwise a round-robin answer could mix a public and a private address.
        for (const a of addresses) checkAddress(hostname, a.address, list);
      } catch (e) {
        return callback(e as NodeJS.ErrnoException, '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

/** Checks a URL's host before connecting; IP literals are checked here because Node skips `lookup` for them. */
export function checkUrlHost(url: URL, list: Allowlist): void {
  const host = stripBrackets(url.hostname);
  if (net.isIP(host)) checkAddress(host, host, list);
}
