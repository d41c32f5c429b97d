import type { Test as Tap } from 'tap'
import { generateText, stepCountIs, streamText, tool, type LanguageModel } from 'ai'
import { z } from 'zod'
import type { Stack } from '../../helper.ts'
import { chatRequests, toolRoundTrip } from './tool-turns.ts'

/** The simulated model calls get_weather for Paris, then answers from the tool's result. */
export const weatherTurn = (s: Stack) => s.sim.setOverride(toolRoundTrip({
  name: 'get_weather',
  arguments: '{"city":"Paris"}',
  answer: result => `Weather report: ${result}`
}))

/**
 * A multi-step AI SDK tool run, generated then streamed, with any provider's model: a tool step, then the answer
 * from the tool's result, with usage and no errors; four upstream calls in all.
 */
export async function aiSdkWeatherRun (t: Tap, s: Stack, model: LanguageModel): Promise<void> {
  weatherTurn(s)
  const tools = {
    get_weather: tool({
      description: 'The current weather in a city.',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => ({ city, forecast: 'sunny' })
    })
  }
  const expected = 'Weather report: {"city":"Paris","forecast":"sunny"}'

  const generated = await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: 'Weather in Paris?', maxRetries: 0 })
  t.equal(generated.text, expected)
  t.equal(generated.steps.length, 2, 'a tool step, then the answer')
  t.equal(generated.steps[0].finishReason, 'tool-calls')
  t.match(generated.steps[0].toolCalls, [{ toolName: 'get_weather', input: { city: 'Paris' } }])
  t.match(generated.steps[0].toolResults, [{ toolName: 'get_weather', output: { city: 'Paris', forecast: 'sunny' } }])
  t.equal(generated.finishReason, 'stop')
  t.type(generated.totalUsage.inputTokens, 'number')
  t.ok((generated.totalUsage.outputTokens ?? 0) > 0, 'output tokens counted')

  const errors: unknown[] = []
  const streamed = streamText({
    model,
    tools,
    stopWhen: stepCountIs(3),
    prompt: 'Weather in Paris, streamed?',
    maxRetries: 0,
    onError: ({ error }) => { errors.push(error) }
  })
  let text = ''
  for await (const delta of streamed.textStream) text += delta
  t.same(errors, [], 'no stream errors')
  t.equal(text, expected)
  const steps = await streamed.steps
  t.equal(steps.length, 2)
  t.match(steps[0].toolCalls, [{ toolName: 'get_weather', input: { city: 'Paris' } }])
  t.equal(await streamed.finishReason, 'stop')
  t.equal(chatRequests(s.sim.requests).length, 4)
}
