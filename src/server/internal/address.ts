/**
 * Which IP addresses a server-side fetch must not reach (SSRF, RFC 9700 §4.16-style guards):
 * loopback, private (RFC 1918, RFC 6598), link-local (cloud metadata at 169.254.169.254),
 * unique-local, multicast, unspecified, and reserved ranges — including IPv4 embedded in IPv6
 * (`::ffff:10.0.0.1`, NAT64 `64:ff9b::/96`).
 *
 * @internal
 */
import { isIP } from "node:net"

const parseIpv4 = (address: string): number | undefined => {
  const parts = address.split(".")
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = value * 256 + n
  }
  return value
}

const inV4 = (value: number, base: string, bits: number): boolean => {
  const start = parseIpv4(base)!
  const size = 2 ** (32 - bits)
  return value >= start && value < start + size
}

/** IPv4 ranges that are not the public internet (IANA special-purpose registry). */
const V4_BLOCKED: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // RFC 6598 shared address space
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4] // reserved, broadcast
]

const classifyV4 = (value: number): AddressClass =>
  inV4(value, "127.0.0.0", 8) ? "loopback" : V4_BLOCKED.some(([b, n]) => inV4(value, b, n)) ? "private" : "public"

/** The eight 16-bit groups of an IPv6 address, or `undefined`. */
const parseIpv6 = (address: string): ReadonlyArray<number> | undefined => {
  let text = address.toLowerCase()
  const zone = text.indexOf("%")
  if (zone >= 0) text = text.slice(0, zone)
  // a trailing dotted IPv4 part counts as two groups
  const lastColon = text.lastIndexOf(":")
  const tail = text.slice(lastColon + 1)
  if (tail.includes(".")) {
    const v4 = parseIpv4(tail)
    if (v4 === undefined) return undefined
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`
  }
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const groups = (s: string) => (s === "" ? [] : s.split(":"))
  const head = groups(halves[0]!)
  const rest = halves.length === 2 ? groups(halves[1]!) : []
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0
  if (fill < 0 || (halves.length === 1 && head.length !== 8)) return undefined
  const all = [...head, ...Array<string>(fill).fill("0"), ...rest]
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined
  return all.map((g) => parseInt(g, 16))
}

const classifyV6 = (g: ReadonlyArray<number>): AddressClass => {
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0)
  if (zeroUpTo(7) && g[7] === 1) return "loopback" // ::1
  if (zeroUpTo(8)) return "private" // ::
  const embedded = (g[6]! * 65536) + g[7]!
  if (zeroUpTo(5) && g[5] === 0xffff) return classifyV4(embedded) // ::ffff:a.b.c.d
  if (zeroUpTo(6)) return classifyV4(embedded) // deprecated ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return classifyV4(embedded) // NAT64
  if ((g[0]! & 0xfe00) === 0xfc00) return "private" // fc00::/7 unique-local
  if ((g[0]! & 0xffc0) === 0xfe80) return "private" // fe80::/10 link-local
  if ((g[0]! & 0xffc0) === 0xfec0) return "private" // fec0::/10 site-local (deprecated)
  if ((g[0]! & 0xff00) === 0xff00) return "private" // ff00::/8 multicast
  if (g[0] === 0x2001 && g[1] === 0x0db8) return "private" // documentation
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return "private" // discard-only
  if (g[0] === 0x2002) return "private" // 6to4 embeds arbitrary IPv4
  return "public"
}

/** What an address is, for the guard: `loopback`, another non-public range, or `public`. @internal */
export type AddressClass = "loopback" | "private" | "public"

/**
 * Classifies an IP address literal; anything that is not one is `private` (refused).
 *
 * @internal
 */
export const classifyAddress = (address: string): AddressClass => {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address
  switch (isIP(bare)) {
    case 4:
      return classifyV4(parseIpv4(bare)!)
    case 6: {
      const groups = parseIpv6(bare)
      return groups === undefined ? "private" : classifyV6(groups)
    }
    default:
      return "private"
  }
}

/** Whether `host` (a URL hostname, possibly `[v6]`) is an IP literal rather than a name. @internal */
export const isIpLiteral = (host: string): boolean =>
  isIP(host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host) !== 0
