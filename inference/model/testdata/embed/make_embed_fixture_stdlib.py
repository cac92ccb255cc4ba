# Fallback fixture writer: the same tiny random BERT layout as
# make_embed_fixture.py, with weights from Python's random module and the
# reference embeddings from a second, independent implementation of the
# BERT forward pass in plain float64 Python (no torch). Usage:
#   python3 make_embed_fixture_stdlib.py OUTDIR
import json, math, os, random, struct, sys

o = sys.argv[1]
V, H, L, NH, I, P, TV = 259, 32, 2, 4, 64, 64, 2
rnd = random.Random(19)
def mat(r, c, s=0.1): return [[rnd.gauss(0, s) for _ in range(c)] for _ in range(r)]
def vec(n, base=0.0, s=0.1): return [base + rnd.gauss(0, s) for _ in range(n)]
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

def flat(x): return [v for row in x for v in row] if isinstance(x[0], list) else x
def shape(x): return [len(x), len(x[0])] if isinstance(x[0], list) else [len(x)]
def f32(v): return struct.unpack("<f", struct.pack("<f", v))[0]
def bf16bits(v):
    b = struct.unpack("<I", struct.pack("<f", v))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF
def enc(v, dt):
    if dt == "F32": return struct.pack("<f", v)
    if dt == "F16": return struct.pack("<e", v)
    return struct.pack("<H", bf16bits(v))
def dec(v, dt):
    if dt == "F32": return f32(v)
    if dt == "F16": return struct.unpack("<e", struct.pack("<e", v))[0]
    return struct.unpack("<f", struct.pack("<I", bf16bits(v) << 16))[0]
def rounded(x, dt): return [[dec(v, dt) for v in r] for r in x] if isinstance(x[0], list) else [dec(v, dt) for v in x]

def save(folder, dt):
    os.makedirs(folder, exist_ok=True)
    hdr, blobs, off = {}, [], 0
    for k in sorted(W):
        b = b"".join(enc(v, dt) for v in flat(W[k]))
        hdr[k] = {"dtype": dt, "shape": shape(W[k]), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    with open(f"{folder}/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": H,
           "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I, "hidden_act": "gelu",
           "max_position_embeddings": P, "type_vocab_size": TV, "layer_norm_eps": 1e-12,
           "position_embedding_type": "absolute", "pad_token_id": 0, "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dt]}
    json.dump(cfg, open(f"{folder}/config.json", "w"), indent=2)

def linear(x, w, b): return [[sum(a * c for a, c in zip(row, wr)) + bb for wr, bb in zip(w, b)] for row in x]
def ln(x, g, b, eps=1e-12):
    out = []
    for r in x:
        m = sum(r) / len(r); v = sum((a - m) ** 2 for a in r) / len(r); s = 1 / math.sqrt(v + eps)
        out.append([(a - m) * s * gg + bb for a, gg, bb in zip(r, g, b)])
    return out
def forward(Wd, ids):
    x = [[w + p + t for w, p, t in zip(Wd["embeddings.word_embeddings.weight"][i], Wd["embeddings.position_embeddings.weight"][j],
                                       Wd["embeddings.token_type_embeddings.weight"][0])] for j, i in enumerate(ids)]
    x = ln(x, Wd["embeddings.LayerNorm.weight"], Wd["embeddings.LayerNorm.bias"])
    d = H // NH
    for l in range(L):
        p = f"encoder.layer.{l}."
        g = lambda n, x: linear(x, Wd[p + n + ".weight"], Wd[p + n + ".bias"])
        q, k, v = g("attention.self.query", x), g("attention.self.key", x), g("attention.self.value", x)
        att = [[0.0] * H for _ in ids]
        for h in range(NH):
            sl = slice(h * d, (h + 1) * d)
            for t in range(len(ids)):
                sc = [sum(a * b for a, b in zip(q[t][sl], k[u][sl])) / math.sqrt(d) for u in range(len(ids))]
                m = max(sc); e = [math.exp(s - m) for s in sc]; z = sum(e)
                for j in range(d):
                    att[t][h * d + j] = sum(e[u] / z * v[u][h * d + j] for u in range(len(ids)))
        a = g("attention.output.dense", att)
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(a, x)], Wd[p + "attention.output.LayerNorm.weight"], Wd[p + "attention.output.LayerNorm.bias"])
        mid = [[0.5 * u * (1 + math.erf(u / math.sqrt(2))) for u in r] for r in g("intermediate.dense", x)]
        f = g("output.dense", mid)
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(f, x)], Wd[p + "output.LayerNorm.weight"], Wd[p + "output.LayerNorm.bias"])
    return x
def norm(v):
    n = max(math.sqrt(sum(a * a for a in v)), 1e-12); return [a / n for a in v]

g = random.Random(7)
lens = [3, 9, 17, 30, 41]
ids = [[2] + [g.randrange(5, 259) for _ in range(n - 2)] + [3] for n in lens]
ref = {"versions": {"implementation": "make_embed_fixture_stdlib.py (float64 Python)"}, "ids": ids, "embeddings": {}}
for name, dt in [("f32", "F32"), ("f16", "F16"), ("bf16", "BF16")]:
    save(f"{o}/{name}", dt)
    Wd = {k: rounded(v, dt) for k, v in W.items()}
    out = {k: [] for k in ["mean", "mean_norm", "cls", "cls_norm", "lasttoken", "lasttoken_norm"]}
    for s in ids:
        hs = forward(Wd, s)
        for pool, e in [("mean", [sum(c) / len(hs) for c in zip(*hs)]), ("cls", hs[0]), ("lasttoken", hs[-1])]:
            out[pool].append(e); out[pool + "_norm"].append(norm(e))
    ref["embeddings"][name] = out
json.dump(ref, open(f"{o}/reference.json", "w"))
print(os.listdir(o))
