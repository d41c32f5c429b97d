import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

// Reasoning handed to clients as `encrypted_content` (wire-apis §1.9): Codex replays the reasoning items it got,
// and the gateway restores their text to `reasoning_content`. AES-256-GCM under a versioned prefix: a token the
// gateway did not write (OpenAI's own, another deployment's, a truncated one) fails to open and is ignored.

const PREFIX = 'qg1.'
const AAD = Buffer.from(PREFIX)
const IV_BYTES = 12
const TAG_BYTES = 16

export interface ReasoningSealer {
  seal (text: string): string
  /** The reasoning text, or null for a token that is not one of ours or does not verify. */
  open (token: unknown): string | null
}

/**
 * The key: from REASONING_SECRET when set, else derived from the upstream keys (sorted, so every replica with the
 * same configuration agrees without another setting).
 */
export function reasoningKey (secret: string, upstreamKeys: string[]): Buffer {
  const material = secret !== '' ? `secret:${secret}` : `upstream-keys:${[...new Set(upstreamKeys)].sort().join('\n')}`
  const ikm = createHash('sha256').update(material).digest()
  return Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), 'qwen-gateway reasoning v1', 32))
}

export function createReasoningSealer (key: Buffer): ReasoningSealer {
  return {
    seal (text) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(AAD)
      const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()])
      return PREFIX + Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url')
    },
    open (token) {
      if (typeof token !== 'string' || !token.startsWith(PREFIX)) return null
      const raw = Buffer.from(token.slice(PREFIX.length), 'base64url')
      if (raw.length < IV_BYTES + TAG_BYTES) return null
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES)).setAAD(AAD)
        decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
        return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8')
      } catch {
        return null
      }
    }
  }
}
