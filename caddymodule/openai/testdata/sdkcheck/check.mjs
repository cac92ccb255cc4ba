import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

// Checks Impetus's wire types against the official OpenAI Node SDK.
// Usage: node check.mjs HOST:PORT SDK_DIR, where SDK_DIR holds
// node_modules/openai (npm install --prefix SDK_DIR openai).
const base = process.argv[2];
const sdk = createRequire(process.argv[3].replace(/\/?$/, '/'))('openai');
const OpenAI = sdk.OpenAI ?? sdk.default ?? sdk;
const client = new OpenAI({ baseURL: `http://${base}/v1`, apiKey: 'k', maxRetries: 0 });
const model = 'mlx-community/Qwen3-0.6B-4bit';
const msgs = [{ role: 'user', content: 'Hello' }];
let n = 0;
const ok = (name) => { n++; console.log('ok', name); };

// models
const models = await client.models.list();
const list = [];
for await (const m of models) list.push(m);
assert.equal(list.length, 1); assert.equal(list[0].id, model); assert.equal(list[0].object, 'model');
assert.deepEqual(list[0].permission, []); assert.equal(list[0].parent, null);
ok('models.list');
const one = await client.models.retrieve(model);
assert.equal(one.id, model); ok('models.retrieve with slash id');

// non-streaming chat
const c = await client.chat.completions.create({ model, messages: msgs, n: 2, logprobs: true, top_logprobs: 1, temperature: 0 });
assert.equal(c.object, 'chat.completion'); assert.match(c.id, /^chatcmpl-/);
assert.equal(c.choices.length, 2); assert.equal(c.choices[1].index, 1);
assert.equal(c.choices[0].message.content, 'Hello there'); assert.equal(c.choices[0].finish_reason, 'stop');
assert.equal(c.choices[0].logprobs.content[0].token, 'Hello');
assert.deepEqual(c.choices[0].logprobs.content[0].bytes, [72, 101, 108, 108, 111]);
assert.equal(c.usage.total_tokens, 7); assert.equal(c.conversation_id, 'chat-1');
ok('chat non-stream');

// tool call, non-streaming
const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const tc = await client.chat.completions.create({ model, messages: msgs, tools, tool_choice: 'required' });
assert.equal(tc.choices[0].message.content, null);
assert.equal(tc.choices[0].message.tool_calls[0].function.arguments, '{"city":"Paris"}');
assert.equal(tc.choices[0].finish_reason, 'tool_calls');
ok('chat tool call');

// streaming with usage
const s = await client.chat.completions.create({ model, messages: msgs, stream: true, stream_options: { include_usage: true } });
let text = '', usage = null, finish = null, chunks = 0;
for await (const ch of s) {
  chunks++;
  assert.equal(ch.object, 'chat.completion.chunk');
  if (ch.usage) { usage = ch.usage; assert.deepEqual(ch.choices, []); continue; }
  assert.equal(ch.usage, null);
  text += ch.choices[0].delta.content ?? '';
  if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
}
assert.equal(text, 'Hello there'); assert.equal(finish, 'stop'); assert.equal(usage.total_tokens, 8); assert.equal(chunks, 6);
ok('chat stream + include_usage');

// streaming tool calls via the SDK's accumulating helper
const runner = client.chat.completions.stream({ model, messages: msgs, tools, stream: true });
const final = await runner.finalChatCompletion();
assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
assert.equal(final.choices[0].message.tool_calls[0].function.arguments, '{"city":"Paris"}');
assert.equal(final.choices[0].message.tool_calls[0].id, 'call_abc');
assert.equal(final.choices[0].finish_reason, 'tool_calls');
ok('chat stream tool calls (stream helper)');

// mid-stream error event
try {
  const bad = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'please fail' }], stream: true });
  for await (const _ of bad) { }
  assert.fail('no error raised');
} catch (e) {
  assert.ok(e instanceof OpenAI.APIError, String(e));
  assert.match(e.message, /shutting down/);
  ok('mid-stream error event surfaces as APIError: ' + e.message);
}

// errors
async function expectErr(p, status, param, code, cls) {
  try { await p; assert.fail('no error'); } catch (e) {
    assert.ok(e instanceof cls, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status); assert.equal(e.param ?? null, param); assert.equal(e.code ?? null, code);
    return e;
  }
}
let e = await expectErr(client.chat.completions.create({ model, messages: [] }), 400, 'messages', null, OpenAI.BadRequestError);
assert.equal(e.type, 'invalid_request_error'); ok('400 empty messages: ' + e.message);
e = await expectErr(client.chat.completions.create({ model, messages: msgs, temperature: 5 }), 400, 'temperature', null, OpenAI.BadRequestError);
ok('400 temperature: ' + e.message);
e = await expectErr(client.chat.completions.create({ model, messages: msgs, bogus: 1 }), 400, 'bogus', null, OpenAI.BadRequestError);
ok('400 unknown field: ' + e.message);
e = await expectErr(client.chat.completions.create({ model: 'nope', messages: msgs }), 404, 'model', 'model_not_found', OpenAI.NotFoundError);
ok('404 model: ' + e.message);
e = await expectErr(client.chat.completions.create({ model, messages: [{ role: 'user', content: 7 }] }), 400, 'messages[0].content', null, OpenAI.BadRequestError);
ok('400 content type: ' + e.message);

// legacy completions
const tcpl = await client.completions.create({ model, prompt: 'The sky is', max_tokens: 1, logprobs: 1, echo: false });
assert.equal(tcpl.object, 'text_completion'); assert.equal(tcpl.choices[0].text, ' bright');
assert.equal(tcpl.choices[0].logprobs.tokens[0], ' bright'); assert.equal(tcpl.usage.total_tokens, 5);
ok('completions non-stream');
const ts = await client.completions.create({ model, prompt: [[1, 2, 3]], stream: true, stream_options: { include_usage: true } });
let t2 = '', u2 = null;
for await (const ch of ts) { if (ch.usage) { u2 = ch.usage; continue; } t2 += ch.choices[0].text; }
assert.equal(t2, ' bright'); assert.equal(u2.completion_tokens, 2);
ok('completions stream');
console.log(`all ${n} SDK checks passed`);
