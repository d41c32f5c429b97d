import { invalidRequest } from '../../errors.ts'
import { inputItemId } from './ids.ts'
import type { Item } from './types.ts'

// Input items as stored and listed (wire-apis §1.8): every item gets an id, `item_reference`s are replaced by the
// items they name, and GET /v1/responses/:id/input_items pages through them.

/** The request's items with an id each: the client's own where it gave one, else one minted for this response. */
export function identify (items: Item[], core: string): Item[] {
  return items.map((item, i) => {
    if (typeof item.id === 'string' && item.id !== '') return item
    const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined)
    return { ...(type === item.type ? {} : { type }), ...item, id: inputItemId(type, core, i) }
  })
}

/** The ids of the stored items a request refers to. */
export const referencedIds = (items: Item[]) =>
  [...new Set(items.filter(item => item.type === 'item_reference').map(item => String(item.id)))]

/** Each `item_reference` replaced by the item it names; an unknown id is the client's mistake (400). */
export function inlineReferences (items: Item[], found: Map<string, Item>): Item[] {
  return items.map((item, i) => {
    if (item.type !== 'item_reference') return item
    const stored = found.get(String(item.id))
    if (!stored) throw invalidRequest(`Item with id '${String(item.id)}' not found: it was never stored, was deleted, or has expired.`, `input[${i}].id`, 'item_not_found')
    return stored
  })
}

export interface PageQuery {
  after?: string
  limit?: number
  order?: 'asc' | 'desc'
}

export interface ItemPage {
  object: 'list'
  data: Item[]
  first_id: string | null
  last_id: string | null
  has_more: boolean
}

/** One page of input items: `order` desc (newest first) by default, `limit` 20, starting after the item `after`. */
export function pageOfItems (items: Item[], query: PageQuery): ItemPage {
  const ordered = query.order === 'asc' ? items : [...items].reverse()
  let start = 0
  if (query.after !== undefined) {
    const at = ordered.findIndex(item => item.id === query.after)
    if (at === -1) throw invalidRequest(`No input item with id '${query.after}' in this response.`, 'after')
    start = at + 1
  }
  const limit = query.limit ?? 20
  const data = ordered.slice(start, start + limit)
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: start + limit < ordered.length }
}
