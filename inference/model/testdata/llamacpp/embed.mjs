// Prints llama.cpp's embedding of each job's token ids (through
// node-llama-cpp's embedding context, the pooling the GGUF metadata names).
// Input on stdin: [{"model": "file.gguf", "ids": [2, ..., 3]}, ...]; output:
// one vector per job, as llama.cpp returns it (pooled, not normalised).
import {getLlama} from "node-llama-cpp";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const jobs = JSON.parse(input);
const llama = await getLlama({gpu: false, logLevel: "error"});
const results = [];
const models = new Map();
for (const {model, ids} of jobs) {
    if (!models.has(model)) {
        const m = await llama.loadModel({modelPath: model, gpuLayers: 0});
        models.set(model, {m, ctx: await m.createEmbeddingContext({contextSize: 128, batchSize: 128, threads: 1})});
    }
    const {ctx} = models.get(model);
    const e = await ctx.getEmbeddingFor(ids);
    results.push(e.vector);
}
for (const {m, ctx} of models.values()) {
    await ctx.dispose();
    await m.dispose();
}
console.log(JSON.stringify(results));
