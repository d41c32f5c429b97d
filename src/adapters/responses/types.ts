// The Responses API shapes the gateway reads and writes (wire-apis §1). Items stay open records: clients send
// fields the gateway does not use, and those are stored and echoed as they came.

/** An input or output item: a message, a function call, its output, a reasoning item ... */
export type Item = Record<string, any> & { type?: string, id?: string }

export interface ResponseError {
  code: string
  message: string
}

export interface ResponseUsage {
  input_tokens: number
  input_tokens_details: { cached_tokens: number, cache_write_tokens: number }
  output_tokens: number
  output_tokens_details: { reasoning_tokens: number }
  total_tokens: number
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed'

/** The Response object (§1.4); `output_text` is never sent, the SDKs derive it. */
export interface ResponseObject {
  id: string
  object: 'response'
  created_at: number
  status: ResponseStatus
  model: string
  output: Item[]
  error: ResponseError | null
  incomplete_details: { reason: string } | null
  usage: ResponseUsage | null
  [key: string]: unknown
}

/** What a chat tool name stands for in the client's terms (namespace tools are flattened, custom tools wrapped). */
export interface ToolOrigin {
  name: string
  namespace?: string
  custom: boolean
}
