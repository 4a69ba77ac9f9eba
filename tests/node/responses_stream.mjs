// The official `openai` npm SDK's `responses.stream()` helper against a live assistd: streamed text, a
// function call round trip (function_call_output in the next response), and resuming a background
// response's stream by id (`response_id` + `starting_after`).
//
// Run by tests/compat/test_node_responses.py (`node --test responses_stream.mjs`: the name keeps it out
// of the directory run of tests/compat/test_node_sdk.py), which scripts the fake upstream and sets:
//   ASSISTD_BASE_URL    the server's /v1 base URL
//   ASSISTD_TEST_MODEL  a model-name prefix; `${prefix}-text`, `${prefix}-tools` and `${prefix}-background`
//                       are scripted with the replies below (keep these in step with the Python test).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI from 'openai';

const BASE_URL = process.env.ASSISTD_BASE_URL;
const MODEL = process.env.ASSISTD_TEST_MODEL;
if (!BASE_URL || !MODEL) {
  throw new Error('set ASSISTD_BASE_URL and ASSISTD_TEST_MODEL (tests/compat/test_node_responses.py does)');
}

const TEXT = 'Hello from the node SDK, streamed as a response.';
const FINAL_TEXT = 'It is sunny in Paris.';
const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

const client = new OpenAI({ baseURL: BASE_URL, apiKey: 'test-key', maxRetries: 0 });

/** Each event's type in order, checking the sequence numbers count up from `first`. */
async function drain(stream, first = 0) {
  const types = [];
  const deltas = [];
  let expected = first;
  for await (const event of stream) {
    assert.equal(event.sequence_number, expected, `event ${event.type} out of sequence`);
    expected += 1;
    types.push(event.type);
    if (event.type === 'response.output_text.delta') deltas.push(event.delta);
  }
  return { types, deltas, final: await stream.finalResponse() };
}

test('responses.stream(): text', async () => {
  const stream = client.responses.stream({ model: `${MODEL}-text`, input: 'Say hello.', instructions: 'Be brief.' });
  const texts = [];
  stream.on('response.output_text.delta', (e) => texts.push(e.delta));
  const { types, deltas, final } = await drain(stream);
  assert.deepEqual(types.slice(0, 4), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
  ]);
  assert.deepEqual(types.slice(-4), [
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  assert.ok(deltas.length > 1, 'the text came in several deltas');
  assert.equal(deltas.join(''), TEXT);
  assert.equal(texts.join(''), TEXT);
  assert.equal(final.status, 'completed');
  assert.equal(final.output_text, TEXT);
  assert.ok(final.id.startsWith('resp_'));
  assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0);
});

test('responses.stream(): a function call round trip', async () => {
  const first = client.responses.stream({ model: `${MODEL}-tools`, input: 'Weather in Paris?', tools: [WEATHER] });
  const done = [];
  first.on('response.function_call_arguments.done', (e) => done.push(e));
  const one = await drain(first);
  assert.ok(one.types.includes('response.function_call_arguments.delta'));
  assert.equal(one.types.at(-1), 'response.completed');
  assert.equal(done.length, 1);
  assert.deepEqual(JSON.parse(done[0].arguments), { city: 'Paris' });
  const call = one.final.output.find((item) => item.type === 'function_call');
  assert.ok(call, 'the response ends with its function call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.ok(call.call_id);

  const second = client.responses.stream({
    model: `${MODEL}-tools`,
    previous_response_id: one.final.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny, 24C' }],
    tools: [WEATHER],
  });
  const two = await drain(second);
  assert.equal(two.final.output_text, FINAL_TEXT);
  assert.equal(two.final.previous_response_id, one.final.id);
  assert.equal(two.types.at(-1), 'response.completed');
});

test('responses.stream({response_id, starting_after}): a background response resumed', async () => {
  const created = await client.responses.create({ model: `${MODEL}-background`, input: 'Say hello.', background: true });
  assert.equal(created.status, 'queued');
  const stream = client.responses.stream({ response_id: created.id, starting_after: 1 });
  const { types, deltas, final } = await drain(stream, 2);
  assert.equal(types[0], 'response.in_progress'); // created (0) and queued (1) are before `starting_after`
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(deltas.join(''), TEXT);
  assert.equal(final.output_text, TEXT);
});
