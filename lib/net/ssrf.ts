// SSRF guard for every outbound request made on a user's behalf (image URLs, webhooks).
// Only globally routable unicast addresses are allowed, unless the allowlist names the host or the address
// (on every port, or on one port for a `host:port` entry).
// `guardedLookup` is passed to http(s).request as its `lookup`, so the address that was checked is the
// address the socket connects to: a DNS answer that changes between check and connect (rebinding) cannot
// slip through.
// Refusal messages name the host and the address class, never a resolved address: they reach the client
// (a problem detail) or the key's owner (a webhook attempt's `error`), and a resolved internal address is
// for the log (SsrfError.address).
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

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/** One allowlist entry; `port` undefined: every port. */
export type AllowRule =
  | { kind: 'host'; host: string; port?: number }
  | { kind: 'suffix'; suffix: string; port?: number }
  | { kind: 'cidr'; cidr: [Ip, number]; port?: number };

export interface Allowlist {
  rules: AllowRule[];
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

function parsePort(raw: string, entry: string): number {
  const port = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || port < 1 || port > 65535) {
    throw new Error(`URL_ALLOWLIST entry "${entry}": port must be 1-65535`);
  }
  return port;
}

/** Splits `host:port`, `[v6]:port`, `cidr:port`; a bare IPv6 address (or CIDR) is host-wide. */
function splitPort(e: string): [string, number | undefined] {
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(e);
  if (bracketed) return [bracketed[1]!, bracketed[2] === undefined ? undefined : parsePort(bracketed[2], e)];
  const withPort = /^([^:]+|[^/]+\/\d+):([^:/]*)$/.exec(e);
  if (withPort) return [withPort[1]!, parsePort(withPort[2]!, e)];
  return [e, undefined];
}

/**
 * Entries: exact host names, "*.example.com" wildcards, IP addresses or CIDRs, each on every port, or with
 * ":port" on that port only ("127.0.0.1:8443", "[::1]:9000", "localhost:3000", "*.svc.local:8080",
 * "10.0.0.0/8:443"). IPv6 addresses with a port need brackets. Throws on an entry that is none of these.
 */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  const list: Allowlist = { rules: [] };
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    const [host, port] = splitPort(e);
    const at = port === undefined ? {} : { port };
    if (host.startsWith('*.') && HOST_NAME.test(host.slice(2))) list.rules.push({ kind: 'suffix', suffix: host.slice(1), ...at });
    else if (host.includes('/')) {
      if (!ipaddr.isValidCIDR(host)) throw new Error(`URL_ALLOWLIST entry "${raw}": not a valid CIDR`);
      list.rules.push({ kind: 'cidr', cidr: ipaddr.parseCIDR(host), ...at });
    } else if (ipaddr.isValid(host)) {
      const a = ipaddr.parse(host);
      list.rules.push({ kind: 'cidr', cidr: [a, a.kind() === 'ipv4' ? 32 : 128], ...at });
    } else if (HOST_NAME.test(host)) list.rules.push({ kind: 'host', host, ...at });
    else throw new Error(`URL_ALLOWLIST entry "${raw}": not a host name, *.suffix, IP address or CIDR (with an optional :port)`);
  }
  return list;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The port a URL connects to: its explicit port, else the scheme's default. */
export function urlPort(url: URL): number | undefined {
  if (url.port) return Number(url.port);
  return url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined;
}

/** A rule applies on its port, or on every port when it names none. An unknown port matches host-wide rules only. */
const onPort = (r: AllowRule, port: number | undefined): boolean => r.port === undefined || r.port === port;

/** Whether the allowlist names `host` (a name or an IP literal) on `port`. */
export function hostAllowlisted(host: string, list: Allowlist, port?: number): boolean {
  const h = stripBrackets(host.toLowerCase()).replace(/\.$/, '');
  const isIp = net.isIP(h) !== 0;
  return list.rules.some((r) => {
    if (!onPort(r, port)) return false;
    if (r.kind === 'host') return r.host === h;
    if (r.kind === 'suffix') return h.endsWith(r.suffix);
    return isIp && ipMatches(h, r.cidr);
  });
}

function ipMatches(address: string, [range, bits]: [Ip, number]): boolean {
  const a = ipaddr.process(address);
  return a.kind() === range.kind() && a.match(range, bits);
}

function addressAllowlisted(address: string, list: Allowlist, port: number | undefined): boolean {
  return list.rules.some((r) => r.kind === 'cidr' && onPort(r, port) && ipMatches(address, r.cidr));
}

/** Why an address is not public, or null when it is ordinary global unicast. */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  // ipaddr.process turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 address it carries.
  const a = ipaddr.process(address);
  const range = a.range();
  return range === 'unicast' ? null : range;
}

const RANGE_WORDS: Record<string, string> = {
  loopback: 'a loopback',
  private: 'a private',
  linkLocal: 'a link-local',
  uniqueLocal: 'a unique-local',
  carrierGradeNat: 'a carrier-grade NAT',
  unspecified: 'an unspecified',
  multicast: 'a multicast',
  broadcast: 'a broadcast',
  reserved: 'a reserved',
};

/** "a link-local address", "a private address", … for an ipaddr.js range name. */
export function describeRange(range: string): string {
  return `${RANGE_WORDS[range] ?? `a non-public (${range})`} address`;
}

/** Throws SsrfError unless `address` may be contacted for `host` on `port`. */
export function checkAddress(host: string, address: string, list: Allowlist, port?: number): void {
  if (hostAllowlisted(host, list, port) || addressAllowlisted(address, list, port)) return;
  const range = nonPublicRange(address);
  if (!range) return;
  const what = describeRange(range);
  const message =
    stripBrackets(host) === address
      ? `${host} is ${what}, which is not allowed`
      : `${host} resolves to ${what}, which is not allowed`;
  throw new SsrfError(message, host, address);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net/http/https that resolves, refuses non-public answers and returns only checked ones.
 *  `port`: the port the connection will use (for `host:port` allowlist entries). */
export function guardedLookup(list: Allowlist, port?: number) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      try {
        if (addresses.length === 0) throw new SsrfError(`${hostname} has no addresses`, hostname);
        // Every answer must pass: otherwise a round-robin answer could mix a public and a private address.
        for (const a of addresses) checkAddress(hostname, a.address, list, port);
      } catch (e) {
        return callback(e as NodeJS.ErrnoException, '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

/** `localhost` and `*.localhost` always mean loopback (RFC 6761), whatever DNS would say. */
const isLocalhostName = (h: string): boolean => h === 'localhost' || h.endsWith('.localhost');
/** When the allowlist permits a loopback address, a localhost name is left to the DNS check. */
const LOOPBACK = ['127.0.0.1', '::1'];

/**
 * Checks a URL's host before connecting: IP literals (Node skips `lookup` for them) and localhost names. Run
 * before the scheme check, so `http://169.254.169.254/` is refused for its address, not for its scheme.
 */
export function checkUrlHost(url: URL, list: Allowlist): void {
  const host = stripBrackets(url.hostname).toLowerCase().replace(/\.$/, '');
  const port = urlPort(url);
  if (net.isIP(host)) checkAddress(host, host, list, port);
  else if (isLocalhostName(host) && !hostAllowlisted(host, list, port) && !LOOPBACK.some((a) => addressAllowlisted(a, list, port))) {
    throw new SsrfError(`${host} is ${describeRange('loopback')}, which is not allowed`, host);
  }
}
