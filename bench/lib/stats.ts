/** Growable list of samples (milliseconds) with a hard cap, so a long run cannot eat the runner's memory. */
export class Samples {
  #data = new Float64Array(4096)
  #length = 0
  readonly #cap: number

  constructor (cap = 5_000_000) {
    this.#cap = cap
  }

  get length (): number {
    return this.#length
  }

  push (value: number): void {
    if (this.#length >= this.#cap) return
    if (this.#length === this.#data.length) {
      const next = new Float64Array(Math.min(this.#cap, this.#data.length * 2))
      next.set(this.#data)
      this.#data = next
    }
    this.#data[this.#length++] = value
  }

  sorted (): Float64Array {
    return this.#data.slice(0, this.#length).sort()
  }
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function summary (samples: Samples | number[]): { count: number, p50: number, p90: number, p99: number, mean: number, max: number } {
  const sorted = samples instanceof Samples ? samples.sorted() : Float64Array.from(samples).sort()
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]
  }
}

export function median (values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (finite.length === 0) return NaN
  const mid = finite.length >> 1
  return finite.length % 2 === 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2
}

/** Least-squares slope of y over x. */
export function slope (xs: number[], ys: number[]): number {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return NaN
  let sx = 0
  let sy = 0
  for (let i = 0; i < n; i++) {
    sx += xs[i]
    sy += ys[i]
  }
  const mx = sx / n
  const my = sy / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return den === 0 ? NaN : num / den
}

export const ratio = (value: number, floor: number) => (Number.isFinite(value) && Number.isFinite(floor) && floor !== 0 ? value / floor : NaN)

/** Fixed decimals with thousands grouping; '–' for missing values. */
export function fmt (value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return '–'
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
}

export const fmtRatio = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–')
export const mb = (kb: number) => kb / 1024
