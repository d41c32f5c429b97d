import type { Redis } from 'ioredis'
import type { Item, ResponseObject } from '../adapters/responses/types.ts'

// Stored responses (wire-apis §1.8): what GET /v1/responses/:id, input_items, previous_response_id and item_reference
// read. In memory, bounded by a TTL and by bytes (least recently used first out); in Redis when the gateway has one,
// so any replica can serve the next turn, each key with the same TTL. A request with store:false stores nothing.

export interface StoredResponse {
  response: ResponseObject
  /** The request's input items, references resolved, each with an id. */
  input: Item[]
  /** The client key's name that created it (null without client keys): only that client may read it. */
  owner?: string | null
}

export interface ResponseStore {
  readonly kind: 'memory' | 'redis'
  put (record: StoredResponse): Promise<void>
  get (id: string): Promise<StoredResponse | null>
  /** Removes a response and the items it owns; false when it was not stored. */
  delete (id: string): Promise<boolean>
  /** Stored items by id (for item_reference) that `owner` may read; ids not found are absent. */
  items (ids: string[], owner: string | null): Promise<Map<string, Item>>
}

/** The items a response owns (resolvable by id): its output, and the input items whose ids it minted. */
export function ownedItems (record: StoredResponse): Item[] {
  const minted = `_${record.response.id.slice('resp_'.length)}_in`
  return [...record.input.filter(item => typeof item.id === 'string' && item.id.includes(minted)), ...record.response.output]
    .filter(item => typeof item.id === 'string' && item.id !== '')
}

interface Entry {
  json: string
  expiresAt: number
  itemIds: string[]
}

export interface MemoryStoreOptions {
  ttlMs: number
  maxBytes: number
  now?: () => number
}

/** One process's store: JSON text per response (its size is what the bound counts), a Map kept in last-use order. */
export function memoryResponseStore (options: MemoryStoreOptions): ResponseStore & { readonly bytes: number } {
  const { ttlMs, maxBytes } = options
  const now = options.now ?? Date.now
  const responses = new Map<string, Entry>()
  const itemOwners = new Map<string, string>()
  let bytes = 0

  const remove = (id: string) => {
    const entry = responses.get(id)
    if (!entry) return false
    responses.delete(id)
    bytes -= entry.json.length
    for (const itemId of entry.itemIds) if (itemOwners.get(itemId) === id) itemOwners.delete(itemId)
    return true
  }
  const live = (id: string): Entry | null => {
    const entry = responses.get(id)
    if (!entry) return null
    if (entry.expiresAt <= now()) {
      remove(id)
      return null
    }
    // Re-inserted last: the Map's order is the order of use, so the oldest is evicted first.
    responses.delete(id)
    responses.set(id, entry)
    return entry
  }

  return {
    kind: 'memory',
    get bytes () { return bytes },
    async put (record) {
      const id = record.response.id
      remove(id)
      const json = JSON.stringify(record)
      // Counted in UTF-16 code units: what the string holds in memory, near enough.
      if (json.length > maxBytes) return
      const itemIds = ownedItems(record).map(item => item.id!)
      responses.set(id, { json, expiresAt: now() + ttlMs, itemIds })
      bytes += json.length
      for (const itemId of itemIds) itemOwners.set(itemId, id)
      for (const oldest of responses.keys()) {
        if (bytes <= maxBytes) break
        remove(oldest)
      }
    },
    async get (id) {
      const entry = live(id)
      return entry ? JSON.parse(entry.json) as StoredResponse : null
    },
    async delete (id) {
      return live(id) !== null && remove(id)
    },
    async items (ids, owner) {
      const found = new Map<string, Item>()
      for (const itemId of ids) {
        const responseId = itemOwners.get(itemId)
        const entry = responseId === undefined ? null : live(responseId)
        if (!entry) continue
        const record = JSON.parse(entry.json) as StoredResponse
        if ((record.owner ?? null) !== owner) continue
        const item = ownedItems(record).find(candidate => candidate.id === itemId)
        if (item) found.set(itemId, item)
      }
      return found
    }
  }
}

const RESPONSE_PREFIX = 'qwen-gateway:response:'
const ITEM_PREFIX = 'qwen-gateway:response-item:'

/** The shared store: one key per response and one per owned item, all expiring together (PX). */
export function redisResponseStore (redis: Redis, ttlMs: number): ResponseStore {
  return {
    kind: 'redis',
    async put (record) {
      const multi = redis.multi().set(RESPONSE_PREFIX + record.response.id, JSON.stringify(record), 'PX', ttlMs)
      const owner = record.owner ?? null
      for (const item of ownedItems(record)) multi.set(ITEM_PREFIX + item.id!, JSON.stringify({ owner, item }), 'PX', ttlMs)
      const results = await multi.exec()
      const failed = results?.find(([error]) => error)
      if (failed) throw failed[0]
    },
    async get (id) {
      const json = await redis.get(RESPONSE_PREFIX + id)
      return json === null ? null : JSON.parse(json) as StoredResponse
    },
    async delete (id) {
      const json = await redis.get(RESPONSE_PREFIX + id)
      if (json === null) return false
      const record = JSON.parse(json) as StoredResponse
      await redis.del(RESPONSE_PREFIX + id, ...ownedItems(record).map(item => ITEM_PREFIX + item.id!))
      return true
    },
    async items (ids, owner) {
      const found = new Map<string, Item>()
      if (ids.length === 0) return found
      const values = await redis.mget(ids.map(id => ITEM_PREFIX + id))
      values.forEach((json, i) => {
        if (json === null) return
        const stored = JSON.parse(json) as { owner: string | null, item: Item }
        if (stored.owner === owner) found.set(ids[i], stored.item)
      })
      return found
    }
  }
}

/** The record if `owner` may read it: another client's response is as good as unknown. */
export const readableBy = (record: StoredResponse | null, owner: string | null) =>
  record !== null && (record.owner ?? null) === owner ? record : null

/** A conversation's earlier items: each stored response of the chain, oldest first, its input then its output. */
export async function storedConversation (store: ResponseStore, id: string, owner: string | null, maxDepth = 10_000): Promise<{ items: Item[], missing: string | null }> {
  const chain: StoredResponse[] = []
  let next: string | null = id
  while (next !== null && chain.length < maxDepth) {
    const record = readableBy(await store.get(next), owner)
    if (!record) return { items: [], missing: next }
    chain.unshift(record)
    const previous = record.response.previous_response_id
    next = typeof previous === 'string' && previous !== '' ? previous : null
  }
  return { items: chain.flatMap(record => [...record.input, ...record.response.output]), missing: null }
}
