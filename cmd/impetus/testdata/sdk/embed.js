// Drives a running impetus server's /v1/embeddings with the official openai
// npm SDK and prints one JSON line: {"passed": [names], "failed": [{name, error}]}.
// Usage: node embed.js BASE_URL API_KEY REFERENCE_JSON NOMIC_REFERENCE_JSON
// The server must serve the BERT fixtures "bert-mean" (F32, mean pooling,
// normalized) and "bert-cls" (F16, CLS pooling), and the Matryoshka-trained
// nomic_bert fixture "nomic-mean".
'use strict';

const fs = require('fs');
const { OpenAI, BadRequestError } = require('openai');

const [base, key, refPath, nomicRefPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0 });
const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
// The server adds [CLS] and [SEP] around token inputs.
const inputs = ref.ids.map((ids) => ids.slice(1, ids.length - 1));

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

function compare(what, got, want) {
  assert(got.length === want.length, `${what}: ${got.length} vectors, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    assert(got[i].length === want[i].length, `${what}[${i}]: ${got[i].length} dims, want ${want[i].length}`);
    for (let j = 0; j < want[i].length; j++) {
      const d = Math.abs(got[i][j] - want[i][j]);
      assert(d <= 1e-4, `${what}[${i}][${j}] = ${got[i][j]}, want ${want[i][j]}`);
    }
  }
}

function vectors(res, model, r = ref) {
  assert(res.object === 'list' && res.model === model, 'response ' + JSON.stringify(res).slice(0, 200));
  res.data.forEach((d, i) => assert(d.object === 'embedding' && d.index === i, `data[${i}] ${JSON.stringify(d).slice(0, 80)}`));
  const tokens = r.ids.reduce((n, ids) => n + ids.length, 0);
  assert(res.usage.prompt_tokens === tokens && res.usage.total_tokens === tokens, 'usage ' + JSON.stringify(res.usage));
  return res.data.map((d) => d.embedding);
}

(async () => {
  await check('embeddings float', async () => {
    const res = await client.embeddings.create({ model: 'bert-mean', input: inputs, encoding_format: 'float' });
    compare('bert-mean', vectors(res, 'bert-mean'), ref.embeddings.f32.mean_norm);
  });
  await check('embeddings base64', async () => {
    const res = await client.embeddings.create({ model: 'bert-cls', input: inputs, encoding_format: 'base64' });
    const got = vectors(res, 'bert-cls').map((s) => {
      assert(typeof s === 'string', 'base64 embedding is a ' + typeof s);
      const buf = Buffer.from(s, 'base64');
      return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
    });
    compare('bert-cls', got, ref.embeddings.f16.cls);
  });
  await check('embeddings SDK default (base64 decoded by the SDK)', async () => {
    const res = await client.embeddings.create({ model: 'bert-mean', input: inputs });
    compare('bert-mean default', vectors(res, 'bert-mean'), ref.embeddings.f32.mean_norm);
  });
  await check('embeddings texts', async () => {
    const res = await client.embeddings.create({ model: 'bert-mean', input: ['hello world', 'the sea'], encoding_format: 'float' });
    assert(res.data.length === 2 && res.data[1].index === 1 && res.data[0].embedding.length === 32, 'texts ' + JSON.stringify(res).slice(0, 200));
  });
  await check('embeddings 400 BadRequestError', async () => {
    try {
      await client.embeddings.create({ model: 'bert-mean', input: ['a', ''] });
    } catch (e) {
      assert(e instanceof BadRequestError && e.status === 400, `want BadRequestError, got ${e}`);
      assert(e.param === 'input[1]' && /empty string/.test(e.message), `param ${e.param}, message ${e.message}`);
      return;
    }
    throw new Error('an empty string was embedded');
  });
  const nomic = JSON.parse(fs.readFileSync(nomicRefPath, 'utf8'));
  await check('embeddings dimensions (Matryoshka: truncated, renormalized)', async () => {
    const dims = 16;
    const want = nomic.embeddings.f32.mean.map((v) => {
      const head = v.slice(0, dims);
      const n = Math.sqrt(head.reduce((s, x) => s + x * x, 0));
      return head.map((x) => x / n);
    });
    const res = await client.embeddings.create({
      model: 'nomic-mean', input: nomic.ids.map((ids) => ids.slice(1, ids.length - 1)), dimensions: dims,
    });
    compare('nomic-mean dimensions', vectors(res, 'nomic-mean', nomic), want);
  });
  await check('embeddings dimensions 400 for a model not trained for it', async () => {
    try {
      await client.embeddings.create({ model: 'bert-mean', input: 'x', dimensions: 8 });
    } catch (e) {
      assert(e instanceof BadRequestError && e.param === 'dimensions', `want a BadRequestError on dimensions, got ${e}`);
      return;
    }
    throw new Error('bert-mean was shortened');
  });
  process.stdout.write(JSON.stringify({ passed, failed }) + '\n');
})();
