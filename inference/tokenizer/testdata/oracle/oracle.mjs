// Encodes corpus.json (49 hand-written stress strings, then 200 seeded random
// mixes of scripts, digits, whitespace, emoji and special-token pieces, then 6
// for BERT's WordPiece: accents, casing, CJK, long words, control characters) with
// the pure-JS Hugging Face tokenizers and prints the ids and decodes as JSON,
// for the Go tokenizer's oracle test.
// Usage: node oracle.mjs <model folder>... (each holding tokenizer.json and tokenizer_config.json)
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";

const here = dirname(fileURLToPath(import.meta.url));
const { texts } = JSON.parse(readFileSync(join(here, "corpus.json"), "utf8"));
const out = {};
for (const dir of process.argv.slice(2)) {
  const tj = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const cfg = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  const tok = new Tokenizer(tj, cfg);
  out[dir] = texts.map((text) => {
    const ids = tok.encode(text, { add_special_tokens: true }).ids;
    return {
      text,
      ids,
      decoded: ids.length ? tok.decode(ids, { skip_special_tokens: false }) : "",
      decoded_skip: ids.length ? tok.decode(ids, { skip_special_tokens: true }) : "",
    };
  });
}
process.stdout.write(JSON.stringify(out));
