import { PassThrough, type Readable } from 'node:stream'

/**
 * Interleaves several event streams into one. Each source only ever emits whole events, so events never mix.
 * When every source has ended the closing events are appended; when `failed()` says one source ended with
 * an error event, the others are stopped and nothing is appended. The client leaving stops every source.
 */
export function mergeEventStreams (sources: Readable[], closing: () => string, failed: () => boolean): Readable {
  const merged = new PassThrough()
  let open = sources.length
  const stopAll = () => {
    for (const source of sources) source.destroy()
  }
  for (const source of sources) {
    source.pipe(merged, { end: false })
    source.once('end', () => {
      open--
      if (failed()) {
        stopAll()
        merged.end()
      } else if (open === 0) {
        merged.end(closing())
      }
    })
  }
  merged.once('close', stopAll)
  return merged
}
