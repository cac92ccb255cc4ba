// Drives a running impetus server with the official openai npm SDK and
// prints one JSON line: {"passed": [names], "failed": [{name, error}]}.
// Usage: node sdk.js BASE_URL API_KEY RATE_LIMITED_BASE_URL
// The server must serve "llama-mlx4" (trained fixture, ChatML template) and
// "llama-tools" (the same weights with a Hermes/Qwen tool template).
'use strict';

const { OpenAI, BadRequestError, AuthenticationError, NotFoundError, RateLimitError } = require('openai');
const Ajv = require('ajv');

const [base, key, limitedBase] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0 });
const model = 'llama-mlx4';
const toolModel = 'llama-tools';
const question = [{ role: 'user', content: 'Tell me about the sea.' }];

const passed = [];
const failed = [];

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function check(name, fn) {
  try {
    await fn();
    passed.push(name);
  } catch (e) {
    failed.push({ name, error: String((e && e.stack) || e) });
  }
}

// collectChat consumes a streamed chat completion the way SDK users do and
// returns per-choice text, tool calls, finish reasons and the usage chunk.
async function collectChat(stream) {
  const out = { text: {}, calls: {}, finish: {}, usage: null, logprobs: {} };
  for await (const chunk of stream) {
    assert(chunk.object === 'chat.completion.chunk', 'chunk object ' + chunk.object);
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      const d = c.delta || {};
      if (d.content) out.text[c.index] = (out.text[c.index] || '') + d.content;
      for (const tc of d.tool_calls || []) {
        const calls = (out.calls[c.index] = out.calls[c.index] || []);
        if (!calls[tc.index]) calls[tc.index] = { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: '' } };
        calls[tc.index].function.arguments += tc.function.arguments || '';
      }
      if (c.logprobs && c.logprobs.content) {
        out.logprobs[c.index] = (out.logprobs[c.index] || []).concat(c.logprobs.content);
      }
      if (c.finish_reason) out.finish[c.index] = c.finish_reason;
    }
  }
  return out;
}

async function expectError(cls, status, fn) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `want ${cls.name}, got ${e && e.constructor && e.constructor.name}: ${e}`);
    assert(e.status === status, `status ${e.status}, want ${status}`);
    return e;
  }
  throw new Error(`want ${cls.name}, the call succeeded`);
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    strict: true,
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};

async function main() {
  let greedy;
  await check('chat', async () => {
    const r = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 24 });
    assert(r.object === 'chat.completion' && r.choices.length === 1, 'shape');
    greedy = r.choices[0].message.content;
    assert(typeof greedy === 'string' && greedy.length > 0, 'empty content');
    assert(r.choices[0].message.role === 'assistant', 'role');
    assert(['stop', 'length'].includes(r.choices[0].finish_reason), 'finish ' + r.choices[0].finish_reason);
    const u = r.usage;
    assert(u.prompt_tokens > 0 && u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens, 'usage ' + JSON.stringify(u));
  });

  await check('chat stream with usage', async () => {
    const stream = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true } });
    const s = await collectChat(stream);
    assert(s.text[0] === greedy, `streamed ${JSON.stringify(s.text[0])} != ${JSON.stringify(greedy)}`);
    assert(s.usage && s.usage.completion_tokens > 0, 'usage chunk ' + JSON.stringify(s.usage));
  });

  await check('chat logprobs', async () => {
    const r = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 2 });
    const lp = r.choices[0].logprobs.content;
    assert(lp.length === r.usage.completion_tokens, `logprobs for ${lp.length} of ${r.usage.completion_tokens} tokens`);
    assert(lp.map((t) => t.token).join('') === r.choices[0].message.content, 'tokens do not spell the content');
    for (const t of lp) {
      assert(t.logprob <= 0 && Array.isArray(t.bytes) && t.top_logprobs.length === 2, 'token ' + JSON.stringify(t));
      assert(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob, 'top_logprobs order');
    }
    const stream = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 2, stream: true });
    const s = await collectChat(stream);
    assert(JSON.stringify(s.logprobs[0].map((t) => t.token)) === JSON.stringify(lp.map((t) => t.token)), 'streamed logprobs differ');
  });

  await check('stop strings', async () => {
    const words = greedy.split(/\s+/).filter(Boolean);
    assert(words.length >= 3, 'greedy reply too short: ' + greedy);
    const stop = words[2];
    const r = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 24, stop: [stop, 'zzzz'] });
    const want = greedy.slice(0, greedy.indexOf(stop));
    assert(r.choices[0].message.content === want, `got ${JSON.stringify(r.choices[0].message.content)} want ${JSON.stringify(want)}`);
    assert(r.choices[0].finish_reason === 'stop', 'finish ' + r.choices[0].finish_reason);
    const stream = await client.chat.completions.create({ model, messages: question, temperature: 0, max_tokens: 24, stop, stream: true });
    const s = await collectChat(stream);
    assert((s.text[0] || '') === want, 'streamed stop text ' + JSON.stringify(s.text[0]));
  });

  await check('n=2', async () => {
    const r = await client.chat.completions.create({ model, messages: question, temperature: 1, seed: 11, max_tokens: 12, n: 2 });
    assert(r.choices.length === 2 && r.choices[0].index === 0 && r.choices[1].index === 1, 'choices ' + JSON.stringify(r.choices));
    assert(r.usage.completion_tokens > 0, 'usage');
    const stream = await client.chat.completions.create({ model, messages: question, temperature: 1, seed: 11, max_tokens: 12, n: 2, stream: true });
    const s = await collectChat(stream);
    assert(s.text[0] === r.choices[0].message.content && s.text[1] === r.choices[1].message.content, 'seeded stream differs from non-stream');
  });

  await check('seed reproducibility', async () => {
    const req = { model, messages: question, temperature: 1, top_p: 0.95, seed: 1234, max_tokens: 16 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    assert(a.choices[0].message.content === b.choices[0].message.content, 'same seed, different text');
  });

  await check('completions', async () => {
    const r = await client.completions.create({ model, prompt: 'The sea is', temperature: 0, max_tokens: 8, logprobs: 2 });
    assert(r.object === 'text_completion' && typeof r.choices[0].text === 'string', 'shape');
    assert(r.choices[0].logprobs.tokens.join('') === r.choices[0].text, 'legacy logprobs tokens');
    assert(r.usage.completion_tokens > 0, 'usage');
    const stream = await client.completions.create({ model, prompt: 'The sea is', temperature: 0, max_tokens: 8, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) text += c.text || '';
    }
    assert(text === r.choices[0].text, `streamed ${JSON.stringify(text)} != ${JSON.stringify(r.choices[0].text)}`);
    assert(usage && usage.completion_tokens === r.usage.completion_tokens, 'stream usage');
  });

  await check('json_schema validated by ajv', async () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 16 },
        waves: { type: 'integer', minimum: 0, maximum: 9 },
        calm: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
      },
      required: ['name', 'waves', 'calm', 'tags'],
      additionalProperties: false,
    };
    const validate = new Ajv().compile(schema);
    for (const stream of [false, true]) {
      for (const seed of [1, 2, 3]) {
        const req = { model, messages: question, temperature: 0.8, seed, max_tokens: 480, response_format: { type: 'json_schema', json_schema: { name: 'sea', strict: true, schema } } };
        let text;
        if (stream) {
          const s = await collectChat(await client.chat.completions.create({ ...req, stream: true }));
          assert(s.finish[0] === 'stop', 'finish ' + s.finish[0]);
          text = s.text[0];
        } else {
          const r = await client.chat.completions.create(req);
          assert(r.choices[0].finish_reason === 'stop', 'finish ' + r.choices[0].finish_reason);
          text = r.choices[0].message.content;
        }
        const value = JSON.parse(text);
        assert(validate(value), `seed ${seed}: ${text} fails the schema: ${JSON.stringify(validate.errors)}`);
      }
    }
  });

  for (const streaming of [false, true]) {
    await check(`tool round trip${streaming ? ' (stream)' : ''}`, async () => {
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const req = { model: toolModel, messages, tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } }, temperature: 0.7, seed: 3, max_tokens: 170 };
      let msg, finish;
      if (streaming) {
        const s = await collectChat(await client.chat.completions.create({ ...req, stream: true }));
        msg = { role: 'assistant', content: s.text[0] || null, tool_calls: s.calls[0] };
        finish = s.finish[0];
      } else {
        const r = await client.chat.completions.create(req);
        msg = r.choices[0].message;
        finish = r.choices[0].finish_reason;
        assert(msg.content === null, 'content beside the call: ' + JSON.stringify(msg.content));
      }
      assert(finish === 'tool_calls', 'finish ' + finish);
      assert(msg.tool_calls && msg.tool_calls.length === 1, 'calls ' + JSON.stringify(msg.tool_calls));
      const call = msg.tool_calls[0];
      assert(call.id.startsWith('call_') && call.type === 'function' && call.function.name === 'get_weather', 'call ' + JSON.stringify(call));
      const args = JSON.parse(call.function.arguments);
      assert(new Ajv().compile(weatherTool.function.parameters)(args), 'arguments ' + call.function.arguments);
      // Send the result back and get an answer.
      const followUp = {
        model: toolModel,
        messages: [...messages, { role: 'assistant', content: null, tool_calls: msg.tool_calls }, { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 18, unit: args.unit }) }],
        tools: [weatherTool],
        tool_choice: 'none',
        temperature: 0,
        max_tokens: 16,
      };
      let answer;
      if (streaming) {
        const s = await collectChat(await client.chat.completions.create({ ...followUp, stream: true }));
        assert(!s.calls[0], 'a call after tool_choice none');
        answer = s.text[0];
      } else {
        const r = await client.chat.completions.create(followUp);
        assert(!r.choices[0].message.tool_calls, 'a call after tool_choice none');
        answer = r.choices[0].message.content;
      }
      assert(typeof answer === 'string' && answer.length > 0, 'no answer after the tool result');
    });
  }

  await check('400 BadRequestError', async () => {
    const e = await expectError(BadRequestError, 400, () => client.chat.completions.create({ model, messages: question, temperature: 7 }));
    assert(e.param === 'temperature' || /temperature/.test(e.message), 'error does not name temperature: ' + e.message);
  });
  await check('401 AuthenticationError', async () => {
    const bad = new OpenAI({ baseURL: base + '/v1', apiKey: 'wrong-key', maxRetries: 0 });
    await expectError(AuthenticationError, 401, () => bad.chat.completions.create({ model, messages: question }));
  });
  await check('404 NotFoundError', async () => {
    await expectError(NotFoundError, 404, () => client.chat.completions.create({ model: 'no-such-model', messages: question }));
  });
  await check('429 RateLimitError', async () => {
    const limited = new OpenAI({ baseURL: limitedBase + '/v1', apiKey: key, maxRetries: 0 });
    await expectError(RateLimitError, 429, async () => {
      for (let i = 0; i < 10; i++) await limited.models.list();
    });
  });

  console.log(JSON.stringify({ passed, failed }));
}

main().catch((e) => {
  console.log(JSON.stringify({ passed, failed: failed.concat([{ name: 'main', error: String(e && e.stack) }]) }));
  process.exitCode = 1;
});
