// Prints llama.cpp's top-5 log-probabilities after each token of a prompt.
// Usage: node logits.mjs MODEL.gguf ID,ID,...
// Sampling options are neutral (temperature 1, no top-k/top-p/min-p), so the
// probabilities are the softmax of the logits.
import {getLlama} from "node-llama-cpp";
const [model, idsArg] = process.argv.slice(2);
const ids = idsArg.split(",").map(Number);
const llama = await getLlama({gpu: false, logLevel: "error"});
const m = await llama.loadModel({modelPath: model, gpuLayers: 0});
const ctx = await m.createContext({contextSize: Math.max(64, ids.length + 8), batchSize: 512, threads: 1});
const seq = ctx.getSequence();
const input = ids.map(id => [id, {generateNext: {probabilities: true, options: {temperature: 1, topK: 0, topP: 1, minP: 0}}}]);
const out = await seq.controlledEvaluate(input);
const res = out.map(o => [...o.next.probabilities.entries()].slice(0, 5).map(([t, p]) => [t, Math.log(p)]));
console.log(JSON.stringify(res));
await ctx.dispose(); await m.dispose();
