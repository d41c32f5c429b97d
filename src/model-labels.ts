// Metric labels must stay bounded whatever clients send (lessons-from-peers §2.6): a model id becomes a
// label value only when it is configured, listed by the upstream, or was served successfully, up to a cap.
// Everything else is counted as `other`.

export const OTHER_MODEL = 'other'

export class ModelLabels {
  readonly #known = new Set<string>()
  readonly #limit: number

  constructor (configured: string[], limit = 256) {
    this.#limit = limit
    this.learn(configured)
  }

  learn (ids: Iterable<string>): void {
    for (const id of ids) this.learnOne(id)
  }

  learnOne (id: string): void {
    if (this.#known.size < this.#limit && id.length <= 128) this.#known.add(id)
  }

  label (model: string): string {
    return this.#known.has(model) ? model : OTHER_MODEL
  }

  get size (): number {
    return this.#known.size
  }
}
