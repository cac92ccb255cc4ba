# Tiny random XLM-R encoder (model_type "xlm-roberta") as a
# sentence-transformers folder, multilingual-e5 style (mean pooling,
# Normalize, "query: "/"passage: " prompts), over the Unigram tokenizer of
# inference/tokenizer/testdata/unigram, with reference embeddings from a
# plain float64 forward pass written here (no torch): BERT with RoBERTa's
# position ids, which start at padding_idx+1 = 2, and one token type.
# Usage: python3 make_xlmr_fixture_stdlib.py   (writes xlmr-mean/ and
# xlmr-reference.json next to this script)
import json, math, os, random, shutil, struct

here = os.path.dirname(os.path.abspath(__file__))
tokdir = os.path.join(here, "..", "..", "..", "tokenizer", "testdata", "unigram")
V = len(json.load(open(os.path.join(tokdir, "tokenizer.json"), encoding="utf-8"))["model"]["vocab"])
H, L, NH, I, PAD, TV, EPS = 32, 2, 4, 64, 1, 1, 1e-5
MAXLEN = 64
P = MAXLEN + PAD + 1
rnd = random.Random(23)
def mat(r, c, s=0.1): return [[rnd.gauss(0, s) for _ in range(c)] for _ in range(r)]
def vec(n, base=0.0, s=0.1): return [base + rnd.gauss(0, s) for _ in range(n)]
def f32(v): return struct.unpack("<f", struct.pack("<f", v))[0]
W = {}
W["embeddings.word_embeddings.weight"] = mat(V, H, 0.5)
W["embeddings.position_embeddings.weight"] = mat(P, H, 0.5)
W["embeddings.token_type_embeddings.weight"] = mat(TV, H, 0.5)
W["embeddings.LayerNorm.weight"] = vec(H, 1.0); W["embeddings.LayerNorm.bias"] = vec(H)
for l in range(L):
    p = f"encoder.layer.{l}."
    for n, r, c in [("attention.self.query", H, H), ("attention.self.key", H, H), ("attention.self.value", H, H),
                    ("attention.output.dense", H, H), ("intermediate.dense", I, H), ("output.dense", H, I)]:
        W[p + n + ".weight"] = mat(r, c, 1 / math.sqrt(c)); W[p + n + ".bias"] = vec(r)
    for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
        W[p + n + ".weight"] = vec(H, 1.0); W[p + n + ".bias"] = vec(H)
# The file holds float32: the reference uses exactly those values.
W = {k: ([[f32(v) for v in r] for r in x] if isinstance(x[0], list) else [f32(v) for v in x]) for k, x in W.items()}

def flat(x): return [v for row in x for v in row] if isinstance(x[0], list) else x
def shape(x): return [len(x), len(x[0])] if isinstance(x[0], list) else [len(x)]

o = os.path.join(here, "xlmr-mean")
os.makedirs(os.path.join(o, "1_Pooling"), exist_ok=True)
hdr, blobs, off = {}, [], 0
for k in sorted(W):
    b = b"".join(struct.pack("<f", v) for v in flat(W[k]))
    hdr[k] = {"dtype": "F32", "shape": shape(W[k]), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(os.path.join(o, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
cfg = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "vocab_size": V, "hidden_size": H,
       "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I, "hidden_act": "gelu",
       "max_position_embeddings": P, "type_vocab_size": TV, "layer_norm_eps": EPS,
       "position_embedding_type": "absolute", "pad_token_id": PAD, "bos_token_id": 0, "eos_token_id": 2,
       "torch_dtype": "float32"}
json.dump(cfg, open(os.path.join(o, "config.json"), "w"), indent=2)
json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
          open(os.path.join(o, "modules.json"), "w"), indent=1)
json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
           "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
           "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True},
          open(os.path.join(o, "1_Pooling", "config.json"), "w"), indent=2)
json.dump({"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
           "similarity_fn_name": "cosine"}, open(os.path.join(o, "config_sentence_transformers.json"), "w"))
json.dump({"max_seq_length": MAXLEN, "do_lower_case": False}, open(os.path.join(o, "sentence_bert_config.json"), "w"))
for n in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(os.path.join(tokdir, n), os.path.join(o, n))

def linear(x, w, b): return [[sum(a * c for a, c in zip(row, wr)) + bb for wr, bb in zip(w, b)] for row in x]
def ln(x, g, b):
    out = []
    for r in x:
        m = sum(r) / len(r); v = sum((a - m) ** 2 for a in r) / len(r); s = 1 / math.sqrt(v + EPS)
        out.append([(a - m) * s * gg + bb for a, gg, bb in zip(r, g, b)])
    return out
def forward(ids):
    # RoBERTa position ids: padding_idx + 1 + index for every non-pad token.
    x = [[w + p + t for w, p, t in zip(W["embeddings.word_embeddings.weight"][i], W["embeddings.position_embeddings.weight"][PAD + 1 + j],
                                       W["embeddings.token_type_embeddings.weight"][0])] for j, i in enumerate(ids)]
    x = ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    d = H // NH
    for l in range(L):
        p = f"encoder.layer.{l}."
        g = lambda n, x: linear(x, W[p + n + ".weight"], W[p + n + ".bias"])
        q, k, v = g("attention.self.query", x), g("attention.self.key", x), g("attention.self.value", x)
        att = [[0.0] * H for _ in ids]
        for hh in range(NH):
            sl = slice(hh * d, (hh + 1) * d)
            for t in range(len(ids)):
                sc = [sum(a * b for a, b in zip(q[t][sl], k[u][sl])) / math.sqrt(d) for u in range(len(ids))]
                m = max(sc); e = [math.exp(s - m) for s in sc]; z = sum(e)
                for j in range(d):
                    att[t][hh * d + j] = sum(e[u] / z * v[u][hh * d + j] for u in range(len(ids)))
        a = g("attention.output.dense", att)
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(a, x)], W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        mid = [[0.5 * u * (1 + math.erf(u / math.sqrt(2))) for u in r] for r in g("intermediate.dense", x)]
        f = g("output.dense", mid)
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(f, x)], W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    return x
def norm(v):
    n = max(math.sqrt(sum(a * a for a in v)), 1e-12); return [a / n for a in v]

g = random.Random(8)
lens = [3, 9, 17, 30, MAXLEN]
ids = [[0] + [g.randrange(4, V - 1) for _ in range(n - 2)] + [2] for n in lens]
ref = {"versions": {"implementation": "make_xlmr_fixture_stdlib.py (float64 Python)"}, "ids": ids,
       "embeddings": {"mean": [], "mean_norm": [], "cls": [], "cls_norm": []}}
for s in ids:
    hs = forward(s)
    for pool, e in [("mean", [sum(c) / len(hs) for c in zip(*hs)]), ("cls", hs[0])]:
        ref["embeddings"][pool].append(e); ref["embeddings"][pool + "_norm"].append(norm(e))
json.dump(ref, open(os.path.join(here, "xlmr-reference.json"), "w"))
print("wrote", o, "and xlmr-reference.json")
