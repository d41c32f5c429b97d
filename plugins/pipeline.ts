import fp from 'fastify-plugin'
import { createModelLimits, type ModelLimits } from '../src/model-limits.ts'
import { createPipeline } from '../src/pipeline/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The one path every API family's answers travel: upstream calls, answer shaping, accounting, heartbeats. */
    pipeline: ReturnType<typeof createPipeline>
    /** Output ceilings and thinking support per upstream model id, for the families that translate requests. */
    modelLimits: ModelLimits
  }
}

export default fp(async function pipeline (fastify) {
  const { config } = fastify
  const service = createPipeline(fastify.upstreams, fastify.gatewayMetrics, {
    heartbeatMs: config.HEARTBEAT_INTERVAL_MS,
    maxFrameBytes: config.MAX_FRAME_BYTES,
    log: fastify.log
  })
  fastify.decorate('pipeline', service)
  fastify.decorate('modelLimits', createModelLimits(config.MODEL_MAX_OUTPUT_TOKENS))

  // close() waits for the streams in flight (src/server.ts gives it SHUTDOWN_GRACE_MS and a little more). Those still
  // open when the grace period runs out end with an error event, so their clients see why the answer stopped instead
  // of a cut connection.
  let deadline: NodeJS.Timeout | undefined
  fastify.addHook('preClose', function endStreamsAfterGrace (done) {
    deadline = setTimeout(() => {
      const ended = service.endOpenStreams()
      if (ended > 0) fastify.log.warn({ streams: ended, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutdown grace period over: open streams ended with an error event')
    }, config.SHUTDOWN_GRACE_MS).unref()
    done()
  })
  fastify.addHook('onClose', function clearShutdownDeadline (_instance, done) {
    clearTimeout(deadline)
    done()
  })
}, { name: 'pipeline', dependencies: ['upstream', 'metrics'] })
