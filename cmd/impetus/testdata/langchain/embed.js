// Drives a running impetus server's /v1/embeddings with LangChain's
// OpenAIEmbeddings (@langchain/openai) and prints one JSON line:
// {"passed": [names], "failed": [{name, error}]}.
// Usage: node embed.js BASE_URL API_KEY
// The server must serve the BERT fixture "bert-mean" and the
// Matryoshka-trained nomic_bert fixture "nomic-mean". LangChain's vectors
// must equal the server's own float answer for the same texts (fetched
// here over plain HTTP), in order, whatever LangChain's batching.
'use strict';

const { OpenAIEmbeddings } = require('@langchain/openai');

const [base, key] = process.argv.slice(2);
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

// raw asks the server directly, float encoding.
async function raw(model, input, dimensions) {
  const body = { model, input, encoding_format: 'float' };
  if (dimensions) body.dimensions = dimensions;
  const res = await fetch(base + '/v1/embeddings', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`raw ${model}: status ${res.status}: ${await res.text()}`);
  return (await res.json()).data.map((d) => d.embedding);
}

function same(what, got, want) {
  assert(got.length === want.length, `${what}: ${got.length} vectors, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    assert(got[i].length === want[i].length, `${what}[${i}]: ${got[i].length} dims, want ${want[i].length}`);
    for (let j = 0; j < want[i].length; j++) {
      assert(Math.abs(got[i][j] - want[i][j]) <= 1e-6, `${what}[${i}][${j}] = ${got[i][j]}, want ${want[i][j]}`);
    }
  }
}

const texts = ['hello world', 'the model says hello', 'jump over the lazy code', 'small text with 5 tokens'];

(async () => {
  await check('embedDocuments (batches of 3, in order)', async () => {
    const lc = new OpenAIEmbeddings({ model: 'bert-mean', apiKey: key, configuration: { baseURL: base + '/v1' }, batchSize: 3, maxRetries: 0 });
    same('bert-mean documents', await lc.embedDocuments(texts), await raw('bert-mean', texts));
  });
  await check('embedQuery', async () => {
    const lc = new OpenAIEmbeddings({ model: 'bert-mean', apiKey: key, configuration: { baseURL: base + '/v1' }, maxRetries: 0 });
    same('bert-mean query', [await lc.embedQuery(texts[1])], await raw('bert-mean', [texts[1]]));
  });
  await check('dimensions (Matryoshka)', async () => {
    const lc = new OpenAIEmbeddings({ model: 'nomic-mean', dimensions: 16, apiKey: key, configuration: { baseURL: base + '/v1' }, maxRetries: 0 });
    const got = await lc.embedDocuments(texts.slice(0, 2));
    got.forEach((v) => assert(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'not renormalized: |v| = ' + Math.hypot(...v)));
    same('nomic-mean dimensions 16', got, await raw('nomic-mean', texts.slice(0, 2), 16));
  });
  await check('an error reaches the caller', async () => {
    const lc = new OpenAIEmbeddings({ model: 'no-such-model', apiKey: key, configuration: { baseURL: base + '/v1' }, maxRetries: 0 });
    try {
      await lc.embedQuery('x');
    } catch (e) {
      assert(e.status === 404 || /404|not found/i.test(String(e)), 'want a 404, got ' + e);
      return;
    }
    throw new Error('an unknown model was embedded');
  });
  process.stdout.write(JSON.stringify({ passed, failed }) + '\n');
})();
