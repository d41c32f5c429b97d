import { randomBytes } from 'node:crypto'

// Ids the gateway mints (wire-apis §4.4): `resp_<id>`, and per output item `<prefix>_<id>_<n>` with n its output
// index, so ids are unique within a response and stable when it is read back. Input items without an id get
// `<prefix>_<id>_in<n>`, which never collides with an output id of the same response.

const PREFIX: Record<string, string> = {
  message: 'msg',
  reasoning: 'rs',
  function_call: 'fc',
  function_call_output: 'fco',
  custom_tool_call: 'ctc',
  custom_tool_call_output: 'ctco'
}

/** The random part shared by a response id and its items' ids. */
export const newResponseCore = () => randomBytes(12).toString('hex')

export const responseIdOf = (core: string) => `resp_${core}`

const prefixFor = (type: string | undefined) => PREFIX[type ?? 'message'] ?? 'item'

export const outputItemId = (type: string, core: string, index: number) => `${prefixFor(type)}_${core}_${index}`

export const inputItemId = (type: string | undefined, core: string, index: number) => `${prefixFor(type)}_${core}_in${index}`
