// The official `openai` npm SDK's Assistants streaming helpers against a live assistd.
//
// Run by tests/compat/test_node_sdk.py, which starts the server, scripts its fake upstream and sets:
//   ASSISTD_BASE_URL    the server's /v1 base URL
//   ASSISTD_TEST_MODEL  a model-name prefix; `${prefix}-text` and `${prefix}-tools` are scripted with
//                       the replies below (keep these constants in step with test_node_sdk.py).
// Only node's built-in test runner (`node --test`) and the pinned SDK are used.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI from 'openai';

const BASE_URL = process.env.ASSISTD_BASE_URL;
const MODEL = process.env.ASSISTD_TEST_MODEL;
if (!BASE_URL || !MODEL) {
  throw new Error('set ASSISTD_BASE_URL and ASSISTD_TEST_MODEL (tests/compat/test_node_sdk.py does)');
}

export const TEXT = 'Hello from the node SDK, streamed word by word.';
export const ARGS = { city: 'Paris' };
export const FINAL_TEXT = 'It is sunny in Paris.';
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

const client = new OpenAI({ baseURL: BASE_URL, apiKey: 'test-key', maxRetries: 0 });

/** Everything an AssistantStream reports, in order; `log` interleaves `E:<event>` with listener names. */
function record(stream) {
  const rec = { log: [], events: [], textDeltas: [], toolCallsCreated: [], toolCallsDone: [], stepsDone: [], messagesDone: [] };
  stream.on('event', (e) => {
    rec.log.push(`E:${e.event}`);
    rec.events.push(e);
  });
  stream.on('runStepCreated', () => rec.log.push('runStepCreated'));
  stream.on('runStepDone', (step) => {
    rec.log.push('runStepDone');
    rec.stepsDone.push(step);
  });
  stream.on('messageCreated', (m) => {
    rec.log.push('messageCreated');
    assert.equal(m.status, 'in_progress');
    assert.deepEqual(m.content, []);
  });
  stream.on('messageDone', (m) => {
    rec.log.push('messageDone');
    rec.messagesDone.push(m);
  });
  stream.on('textCreated', () => rec.log.push('textCreated'));
  stream.on('textDelta', (delta) => {
    rec.log.push('textDelta');
    rec.textDeltas.push(delta.value);
  });
  stream.on('textDone', () => rec.log.push('textDone'));
  stream.on('toolCallCreated', (call) => {
    rec.log.push('toolCallCreated');
    rec.toolCallsCreated.push(structuredClone(call));
  });
  stream.on('toolCallDelta', (delta) => {
    rec.log.push('toolCallDelta');
    assert.equal(delta.id, undefined, 'a call id is sent once');
    assert.equal(delta.function.name, undefined, 'a function name is sent once');
  });
  stream.on('toolCallDone', (call) => {
    rec.log.push('toolCallDone');
    rec.toolCallsDone.push(structuredClone(call));
  });
  return rec;
}

const words = (text) => text.split(/\s+/).filter(Boolean).length;
const textOf = (message) => message.content.filter((p) => p.type === 'text').map((p) => p.text.value).join('');
const RUN_START = ['E:thread.run.created', 'E:thread.run.queued', 'E:thread.run.in_progress'];

function messageEvents(deltas) {
  const out = [
    'E:thread.run.step.created', 'runStepCreated', 'E:thread.run.step.in_progress',
    'E:thread.message.created', 'messageCreated', 'E:thread.message.in_progress',
  ];
  for (let i = 0; i < deltas; i++) {
    out.push('E:thread.message.delta', ...(i === 0 ? ['textCreated'] : []), 'textDelta');
  }
  return [...out, 'E:thread.message.completed', 'textDone', 'messageDone', 'E:thread.run.step.completed', 'runStepDone'];
}

async function assistantMessages(threadId, runId) {
  const page = await client.beta.threads.messages.list(threadId, { run_id: runId, order: 'asc' });
  return page.data.filter((m) => m.role === 'assistant');
}

async function storedSteps(threadId, runId) {
  return (await client.beta.threads.runs.steps.list(runId, { thread_id: threadId, order: 'asc' })).data;
}

async function setup(model, tools) {
  const assistant = await client.beta.assistants.create({ model, instructions: 'You are terse.', tools });
  const thread = await client.beta.threads.create({ messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  return { assistant, thread };
}

test('text run: runs.stream in reference order, snapshots equal GET', async () => {
  const { assistant, thread } = await setup(`${MODEL}-text`, []);
  const stream = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
  const rec = record(stream);
  const run = await stream.finalRun();

  assert.deepEqual(rec.log, [...RUN_START, ...messageEvents(words(TEXT)), 'E:thread.run.completed']);
  assert.equal(run.status, 'completed');
  assert.equal(rec.textDeltas.join(''), TEXT);
  const deltas = rec.events.filter((e) => e.event === 'thread.message.delta');
  assert.ok(deltas.every((e) => e.data.delta.content.every((part) => part.index === 0)));

  const storedRun = await client.beta.threads.runs.retrieve(run.id, { thread_id: thread.id });
  assert.equal(storedRun.status, run.status);
  assert.deepEqual(storedRun.usage, run.usage);
  assert.equal(storedRun.completed_at, run.completed_at);

  const [message] = await stream.finalMessages();
  const [stored] = await assistantMessages(thread.id, run.id);
  assert.equal(message.id, stored.id);
  assert.equal(textOf(message), textOf(stored));
  assert.equal(textOf(stored), TEXT);
  assert.equal(rec.messagesDone[0].status, stored.status);
  assert.deepEqual(rec.messagesDone[0].content, stored.content);

  const [step] = await stream.finalRunSteps();
  const [storedStep] = await storedSteps(thread.id, run.id);
  assert.equal(step.id, storedStep.id);
  assert.equal(storedStep.step_details.message_creation.message_id, message.id);
  assert.equal(step.status, storedStep.status);
  assert.equal(storedStep.status, 'completed');
});

test('function run: requires_action, then submitToolOutputsStream to completed', async () => {
  const { assistant, thread } = await setup(`${MODEL}-tools`, [WEATHER]);
  const first = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
  const rec1 = record(first);
  const pending = await first.finalRun();

  assert.equal(pending.status, 'requires_action');
  const fragments = Math.ceil(JSON.stringify(ARGS).length / 8);
  assert.deepEqual(rec1.log, [
    ...RUN_START,
    'E:thread.run.step.created', 'runStepCreated', 'E:thread.run.step.in_progress',
    'E:thread.run.step.delta', 'toolCallCreated',
    ...Array(fragments).fill(['E:thread.run.step.delta', 'toolCallDelta']).flat(),
    'E:thread.run.requires_action', 'toolCallDone',
  ]);
  const [call] = pending.required_action.submit_tool_outputs.tool_calls;
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.equal(call.function.arguments, JSON.stringify(ARGS));
  assert.equal(rec1.toolCallsCreated.length, 1);
  assert.equal(rec1.toolCallsCreated[0].id, call.id);
  assert.equal(rec1.toolCallsDone[0].id, call.id);
  assert.equal(rec1.toolCallsDone[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(rec1.toolCallsDone[0].function.arguments), ARGS);

  const [toolStep] = await first.finalRunSteps();
  const storedToolStep = await client.beta.threads.runs.steps.retrieve(toolStep.id, { thread_id: thread.id, run_id: pending.id });
  assert.equal(storedToolStep.status, 'in_progress');
  assert.equal(storedToolStep.step_details.tool_calls[0].id, call.id);
  assert.equal(storedToolStep.step_details.tool_calls[0].function.arguments, toolStep.step_details.tool_calls[0].function.arguments);

  const second = client.beta.threads.runs.submitToolOutputsStream(pending.id, {
    thread_id: thread.id,
    tool_outputs: [{ tool_call_id: call.id, output: '22C and sunny' }],
  });
  const rec2 = record(second);
  const run = await second.finalRun();

  assert.equal(run.id, pending.id);
  assert.equal(run.status, 'completed');
  assert.deepEqual(rec2.log, [
    'E:thread.run.step.completed', 'runStepDone', 'E:thread.run.queued', 'E:thread.run.in_progress',
    ...messageEvents(words(FINAL_TEXT)), 'E:thread.run.completed',
  ]);
  const completedToolStep = rec2.stepsDone[0];
  assert.equal(completedToolStep.id, toolStep.id);
  assert.equal(completedToolStep.step_details.tool_calls[0].function.output, '22C and sunny');

  const steps = await storedSteps(thread.id, run.id);
  assert.deepEqual(steps.map((s) => s.id), rec2.stepsDone.map((s) => s.id));
  assert.deepEqual(steps.map((s) => s.status), ['completed', 'completed']);
  assert.deepEqual(steps[0].step_details, completedToolStep.step_details);

  const [stored] = await assistantMessages(thread.id, run.id);
  assert.equal(textOf(stored), FINAL_TEXT);
  assert.equal(rec2.textDeltas.join(''), FINAL_TEXT);
  assert.equal(rec2.messagesDone[0].id, stored.id);
  assert.equal(rec2.messagesDone[0].status, 'completed');
  const storedRun = await client.beta.threads.runs.retrieve(run.id, { thread_id: thread.id });
  assert.equal(storedRun.status, 'completed');
  assert.equal(storedRun.required_action, null);
});
