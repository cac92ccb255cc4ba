// Prints llama.cpp's top-5 [id, log-probability] after each token of each
// job. Input on stdin: [{"model": "file.gguf", "ids": [1, 2, ...]}, ...];
// output: one array per job. Sampling options are neutral (temperature 1, no
// top-k/top-p/min-p), so the probabilities are the softmax of the logits.
import {getLlama} from "node-llama-cpp";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const jobs = JSON.parse(input);
const llama = await getLlama({gpu: false, logLevel: "error"});
const results = [];
for (const {model, ids} of jobs) {
    const m = await llama.loadModel({modelPath: model, gpuLayers: 0});
    const ctx = await m.createContext({contextSize: Math.max(64, ids.length + 8), batchSize: 512, threads: 1});
    const seq = ctx.getSequence();
    const out = await seq.controlledEvaluate(ids.map(id =>
        [id, {generateNext: {probabilities: true, options: {temperature: 1, topK: 0, topP: 1, minP: 0}}}]));
    results.push(out.map(o => [...o.next.probabilities.entries()].slice(0, 5).map(([t, p]) => [t, Math.log(p)])));
    await ctx.dispose();
    await m.dispose();
}
console.log(JSON.stringify(results));
