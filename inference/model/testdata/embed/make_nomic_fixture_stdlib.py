# Tiny random nomic_bert (the nomic-embed-text-v1.5 architecture) as a
# sentence-transformers folder, with reference embeddings from a plain
# float64 Python forward pass written from the architecture's description
# (no torch): word + token-type embeddings and LayerNorm, then post-norm
# blocks of bidirectional attention with rotary position embeddings (fused
# Wqkv, no biases, rotate-half pairing) and a SwiGLU MLP
# (fc2(fc11(x) * silu(fc12(x)))). Usage:
#   python3 make_nomic_fixture_stdlib.py OUTDIR
# writes OUTDIR/nomic-mean (the folder) and OUTDIR/nomic-reference.json.
import json, math, os, random, shutil, struct, sys

o = sys.argv[1]
V, H, L, NH, I, P, TV = 320, 32, 2, 4, 256, 64, 2  # vocab padded to a multiple of 64, MLP width to one of 256, as nomic's are
BASE, EPS = 1000.0, 1e-12
rnd = random.Random(23)
def mat(r, c, s=0.1): return [[rnd.gauss(0, s) for _ in range(c)] for _ in range(r)]
def vec(n, base=0.0, s=0.1): return [base + rnd.gauss(0, s) for _ in range(n)]
W = {}
W["embeddings.word_embeddings.weight"] = mat(V, H, 0.5)
W["embeddings.token_type_embeddings.weight"] = mat(TV, H, 0.5)
W["emb_ln.weight"] = vec(H, 1.0); W["emb_ln.bias"] = vec(H)
for l in range(L):
    p = f"encoder.layers.{l}."
    W[p + "attn.Wqkv.weight"] = mat(3 * H, H, 1 / math.sqrt(H))
    W[p + "attn.out_proj.weight"] = mat(H, H, 1 / math.sqrt(H))
    W[p + "mlp.fc11.weight"] = mat(I, H, 1 / math.sqrt(H))
    W[p + "mlp.fc12.weight"] = mat(I, H, 1 / math.sqrt(H))
    W[p + "mlp.fc2.weight"] = mat(H, I, 1 / math.sqrt(I))
    for n in ["norm1", "norm2"]:
        W[p + n + ".weight"] = vec(H, 1.0); W[p + n + ".bias"] = vec(H)

def flat(x): return [v for row in x for v in row] if isinstance(x[0], list) else x
def shape(x): return [len(x), len(x[0])] if isinstance(x[0], list) else [len(x)]
def f32(v): return struct.unpack("<f", struct.pack("<f", v))[0]
Wd = {k: ([[f32(v) for v in r] for r in x] if isinstance(x[0], list) else [f32(v) for v in x]) for k, x in W.items()}

folder = f"{o}/nomic-mean"
os.makedirs(folder + "/1_Pooling", exist_ok=True)
hdr, blobs, off = {}, [], 0
for k in sorted(W):
    b = b"".join(struct.pack("<f", v) for v in flat(W[k]))
    hdr[k] = {"dtype": "F32", "shape": shape(W[k]), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(f"{folder}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
cfg = {"architectures": ["NomicBertModel"], "model_type": "nomic_bert", "activation_function": "swiglu",
       "vocab_size": V, "n_embd": H, "n_layer": L, "n_head": NH, "n_inner": I, "n_positions": P,
       "max_trained_positions": P, "type_vocab_size": TV, "layer_norm_epsilon": EPS, "causal": False,
       "prenorm": False, "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False,
       "rotary_emb_base": BASE, "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False,
       "rotary_emb_scale_base": None, "rotary_scaling_factor": None, "use_rms_norm": False,
       "pad_vocab_size_multiple": 64, "torch_dtype": "float32",
       # nomic's code passes attn_pdrop to scaled_dot_product_attention even
       # in eval mode (GPT2Config's default is 0.1): zero, as its models set.
       "attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0}
json.dump(cfg, open(f"{folder}/config.json", "w"), indent=2)
json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
          open(f"{folder}/modules.json", "w"), indent=2)
json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
           "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
           "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True},
          open(f"{folder}/1_Pooling/config.json", "w"), indent=2)
json.dump({"max_seq_length": P, "do_lower_case": False}, open(f"{folder}/sentence_bert_config.json", "w"))
# nomic-embed-text-v1.5's task prefixes, as its config_sentence_transformers.json names them.
json.dump({"prompts": {"query": "search_query: ", "document": "search_document: ", "passage": "search_document: ",
                       "classification": "classification: ", "clustering": "clustering: "},
           "default_prompt_name": None, "similarity_fn_name": "cosine"},
          open(f"{folder}/config_sentence_transformers.json", "w"))

def linear(x, w): return [[sum(a * c for a, c in zip(row, wr)) for wr in w] for row in x]
def ln(x, g, b):
    out = []
    for r in x:
        m = sum(r) / len(r); v = sum((a - m) ** 2 for a in r) / len(r); s = 1 / math.sqrt(v + EPS)
        out.append([(a - m) * s * gg + bb for a, gg, bb in zip(r, g, b)])
    return out
def rotate(x, pos, d):  # rotary on every head of one row, dimension i paired with i + d/2
    out = list(x)
    for h in range(NH):
        for i in range(d // 2):
            ang = pos * BASE ** (-2.0 * i / d)
            a, b = x[h * d + i], x[h * d + i + d // 2]
            out[h * d + i] = a * math.cos(ang) - b * math.sin(ang)
            out[h * d + i + d // 2] = b * math.cos(ang) + a * math.sin(ang)
    return out
def silu(u): return u / (1 + math.exp(-u))
def forward(ids):
    x = [[w + t for w, t in zip(Wd["embeddings.word_embeddings.weight"][i], Wd["embeddings.token_type_embeddings.weight"][0])] for i in ids]
    x = ln(x, Wd["emb_ln.weight"], Wd["emb_ln.bias"])
    d = H // NH
    for l in range(L):
        p = f"encoder.layers.{l}."
        qkv = linear(x, Wd[p + "attn.Wqkv.weight"])
        q = [rotate(r[:H], t, d) for t, r in enumerate(qkv)]
        k = [rotate(r[H:2 * H], t, d) for t, r in enumerate(qkv)]
        v = [r[2 * H:] for r in qkv]
        att = [[0.0] * H for _ in ids]
        for hh in range(NH):
            sl = slice(hh * d, (hh + 1) * d)
            for t in range(len(ids)):
                sc = [sum(a * b for a, b in zip(q[t][sl], k[u][sl])) / math.sqrt(d) for u in range(len(ids))]
                m = max(sc); e = [math.exp(s - m) for s in sc]; z = sum(e)
                for j in range(d):
                    att[t][hh * d + j] = sum(e[u] / z * v[u][hh * d + j] for u in range(len(ids)))
        a = linear(att, Wd[p + "attn.out_proj.weight"])
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(a, x)], Wd[p + "norm1.weight"], Wd[p + "norm1.bias"])
        up, gate = linear(x, Wd[p + "mlp.fc11.weight"]), linear(x, Wd[p + "mlp.fc12.weight"])
        f = linear([[u * silu(g) for u, g in zip(ru, rg)] for ru, rg in zip(up, gate)], Wd[p + "mlp.fc2.weight"])
        x = ln([[p1 + p2 for p1, p2 in zip(r1, r2)] for r1, r2 in zip(f, x)], Wd[p + "norm2.weight"], Wd[p + "norm2.bias"])
    return x
def norm(v):
    n = max(math.sqrt(sum(a * a for a in v)), 1e-12); return [a / n for a in v]

g = random.Random(11)
lens = [3, 7, 16, 33, 50]
ids = [[2] + [g.randrange(5, 259) for _ in range(n - 2)] + [3] for n in lens]
ref = {"versions": {"implementation": "make_nomic_fixture_stdlib.py (float64 Python)"}, "ids": ids, "embeddings": {"f32": {}}}
out = {k: [] for k in ["mean", "mean_norm", "cls", "cls_norm", "lasttoken", "lasttoken_norm"]}
for s in ids:
    hs = forward(s)
    for pool, e in [("mean", [sum(c) / len(hs) for c in zip(*hs)]), ("cls", hs[0]), ("lasttoken", hs[-1])]:
        out[pool].append(e); out[pool + "_norm"].append(norm(e))
ref["embeddings"]["f32"] = out
json.dump(ref, open(f"{o}/nomic-reference.json", "w"))
print(sorted(os.listdir(folder)))
