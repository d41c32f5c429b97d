import { createSocket, type RemoteInfo } from 'node:dgram'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as packet from 'dns-packet'
import type { Teardown } from './servers.ts'

// A DNS server for nginx's `resolver` in the tests, standing in for Docker's embedded DNS (127.0.0.11): it answers
// A queries for the names it was given with every address at once, the way Docker answers for a network alias that
// several containers share, and NXDOMAIN for anything else. The answers can change while nginx runs.

const NXDOMAIN = 3
// Docker's embedded DNS answers with a TTL of 600 s: nginx must re-resolve because of its own `valid=`, not the TTL.
const TTL_SECONDS = 600

export interface DnsServer {
  /** host:port, for nginx's resolver directive. */
  address: string
  /** Replaces the A records of a name; an empty list makes it NXDOMAIN. */
  answer (name: string, addresses: string[]): void
  /** The A and AAAA questions asked so far, in order. */
  queries: Array<{ name: string, type: string, at: number }>
}

/** A UDP DNS server on a free loopback port, closed when the test ends. */
export async function startDns (t: Teardown, records: Record<string, string[]> = {}): Promise<DnsServer> {
  const names = new Map(Object.entries(records).map(([name, addresses]) => [name.toLowerCase(), addresses]))
  const queries: DnsServer['queries'] = []
  const socket = createSocket('udp4')

  function reply (message: Buffer, peer: RemoteInfo) {
    let query: packet.DecodedPacket
    try {
      query = packet.decode(message)
    } catch {
      return
    }
    const question = query.questions?.[0]
    if (question === undefined) return
    const name = question.name.toLowerCase()
    queries.push({ name, type: question.type, at: performance.now() })
    const addresses = names.get(name) ?? []
    const known = addresses.length > 0
    const response = packet.encode({
      type: 'response',
      id: query.id,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (known ? 0 : NXDOMAIN),
      questions: query.questions,
      answers: question.type === 'A' ? addresses.map(data => ({ type: 'A' as const, name: question.name, ttl: TTL_SECONDS, data })) : []
    })
    socket.send(response, peer.port, peer.address)
  }

  socket.on('message', reply)
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  t.after(() => new Promise<void>(resolve => socket.close(() => resolve())))
  const { port } = socket.address() as AddressInfo
  return {
    address: `127.0.0.1:${port}`,
    answer (name, addresses) {
      names.set(name.toLowerCase(), addresses)
    },
    queries
  }
}
