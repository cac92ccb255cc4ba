# Tiny random Qwen3 decoder embedding model, Qwen3-Embedding style, as two
# sentence-transformers folders: qwen3-last (float32, tensors named without
# "model." as Qwen3-Embedding's Qwen3Model saves them) and qwen3-last-mlx8
# (the same weights MLX-quantized to 8 bits, group 32, embeddings included,
# "model." names as mlx_lm writes). Last-token pooling, Normalize, the
# "Instruct: ...\nQuery:" prompt, and a byte-level tokenizer whose template
# appends <|endoftext|> as Qwen3-Embedding's does.
# The reference is a plain float64 Qwen3 forward pass written here (no
# torch): RMSNorm, q/k norm per head, rotate-half RoPE (theta 1e6), grouped
# query attention with a causal mask, SwiGLU, final norm; the MLX copy's
# reference uses its dequantized weights (scales and biases in float16).
# Usage: python3 make_qwen3_fixture_stdlib.py   (writes the folders and
# qwen3-reference.json next to this script)
import json, math, os, random, struct

here = os.path.dirname(os.path.abspath(__file__))
V, H, L, NH, NKV, HD, I = 272, 32, 2, 4, 2, 16, 64
THETA, EPS, MAXPOS, GROUP, BITS = 1e6, 1e-6, 128, 32, 8
EOT, IMS, IME = 256, 257, 258
rnd = random.Random(31)
def f32(v): return struct.unpack("<f", struct.pack("<f", v))[0]
def f16(v): return struct.unpack("<e", struct.pack("<e", v))[0]
def mat(r, c, s): return [[f32(rnd.gauss(0, s)) for _ in range(c)] for _ in range(r)]
def vec(n, base=1.0, s=0.1): return [f32(base + rnd.gauss(0, s)) for _ in range(n)]
W = {"embed_tokens.weight": mat(V, H, 0.5), "norm.weight": vec(H)}
for l in range(L):
    p = f"layers.{l}."
    W[p + "input_layernorm.weight"] = vec(H); W[p + "post_attention_layernorm.weight"] = vec(H)
    W[p + "self_attn.q_norm.weight"] = vec(HD); W[p + "self_attn.k_norm.weight"] = vec(HD)
    for n, r, c in [("self_attn.q_proj", NH * HD, H), ("self_attn.k_proj", NKV * HD, H), ("self_attn.v_proj", NKV * HD, H),
                    ("self_attn.o_proj", H, NH * HD), ("mlp.gate_proj", I, H), ("mlp.up_proj", I, H), ("mlp.down_proj", H, I)]:
        W[p + n + ".weight"] = mat(r, c, 1 / math.sqrt(c))
QUANT = [k for k in W if k.endswith("_proj.weight") or k == "embed_tokens.weight"]

def quantize(m):
    """MLX affine quantization of one matrix: per group of GROUP values,
    scale = (max-min)/(2^BITS-1) and bias = min in float16, q = round((w-bias)/scale)."""
    qs, scales, biases, deq = [], [], [], []
    top = (1 << BITS) - 1
    for row in m:
        qr, sr, br, dr = [], [], [], []
        for g in range(0, len(row), GROUP):
            grp = row[g:g + GROUP]
            lo, hi = min(grp), max(grp)
            s = f16((hi - lo) / top) or f16(1e-8)
            b = f16(lo)
            for w in grp:
                q = min(top, max(0, round((w - b) / s)))
                qr.append(q); dr.append(s * q + b)
            sr.append(s); br.append(b)
        words = []
        per = 32 // BITS
        for j in range(0, len(qr), per):
            u = 0
            for k in range(per):
                u |= qr[j + k] << (BITS * k)
            words.append(u)
        qs.append(words); scales.append(sr); biases.append(br); deq.append(dr)
    return qs, scales, biases, deq

def write_safetensors(path, tensors, meta=None):
    hdr, blobs, off = {}, [], 0
    if meta:
        hdr["__metadata__"] = meta
    for name in sorted(tensors):
        dt, shape, data = tensors[name]
        fmt = {"F32": "<f", "F16": "<e", "U32": "<I"}[dt]
        b = b"".join(struct.pack(fmt, v) for v in data)
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def flat(x): return [v for r in x for v in r] if isinstance(x[0], list) else x
def shape(x): return [len(x), len(x[0])] if isinstance(x[0], list) else [len(x)]

# Byte-level tokenizer: the 256 byte symbols, three Qwen specials, and the
# template that appends <|endoftext|>.
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
vocab = {chr(c): b for b, c in zip(bs, cs)}
def special(i, t): return {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
tok = {"version": "1.0", "truncation": None, "padding": None,
       "added_tokens": [special(EOT, "<|endoftext|>"), special(IMS, "<|im_start|>"), special(IME, "<|im_end|>")],
       "normalizer": {"type": "NFC"},
       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
       "post_processor": {"type": "TemplateProcessing",
                          "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
                          "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                                   {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}}],
                          "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [EOT], "tokens": ["<|endoftext|>"]}}},
       "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
       "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                 "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []}}
tcfg = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "padding_side": "left", "model_max_length": MAXPOS,
        "clean_up_tokenization_spaces": False, "tokenizer_class": "Qwen2Tokenizer"}
prompts = {"query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:", "document": ""}

def folder(name, tensors, quant):
    o = os.path.join(here, name)
    os.makedirs(os.path.join(o, "1_Pooling"), exist_ok=True)
    write_safetensors(os.path.join(o, "model.safetensors"), tensors, {"format": "mlx"} if quant else {"format": "pt"})
    cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": V, "hidden_size": H,
           "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": HD,
           "intermediate_size": I, "hidden_act": "silu", "max_position_embeddings": MAXPOS, "rope_theta": THETA,
           "rms_norm_eps": EPS, "tie_word_embeddings": True, "attention_bias": False, "bos_token_id": EOT,
           "eos_token_id": EOT, "torch_dtype": "float32"}
    if quant:
        cfg["quantization"] = {"group_size": GROUP, "bits": BITS}
    json.dump(cfg, open(os.path.join(o, "config.json"), "w"), indent=2)
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
              open(os.path.join(o, "modules.json"), "w"), indent=1)
    json.dump({"word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True, "include_prompt": True},
              open(os.path.join(o, "1_Pooling", "config.json"), "w"), indent=2)
    json.dump({"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"},
              open(os.path.join(o, "config_sentence_transformers.json"), "w"))
    json.dump({"max_seq_length": MAXPOS, "do_lower_case": False}, open(os.path.join(o, "sentence_bert_config.json"), "w"))
    with open(os.path.join(o, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    json.dump(tcfg, open(os.path.join(o, "tokenizer_config.json"), "w"), indent=1)

folder("qwen3-last", {k: ("F32", shape(v), flat(v)) for k, v in W.items()}, False)
WQ, qt = {}, {}
for k, v in W.items():
    base = "model." + k
    if k in QUANT:
        qs, sc, bi, deq = quantize(v)
        stem = base[:-len(".weight")]
        qt[base] = ("U32", shape(qs), flat(qs)); qt[stem + ".scales"] = ("F16", shape(sc), flat(sc)); qt[stem + ".biases"] = ("F16", shape(bi), flat(bi))
        WQ[k] = deq
    else:
        qt[base] = ("F32", shape(v), flat(v)); WQ[k] = v
folder("qwen3-last-mlx8", qt, True)

def rms(x, w):
    s = 1 / math.sqrt(sum(a * a for a in x) / len(x) + EPS)
    return [a * s * g for a, g in zip(x, w)]
def mv(m, x): return [sum(a * b for a, b in zip(r, x)) for r in m]
inv = [THETA ** (-2 * i / HD) for i in range(HD // 2)]
def rope(x, pos):
    h = HD // 2
    c = [math.cos(pos * f) for f in inv]; s = [math.sin(pos * f) for f in inv]
    return [x[i] * c[i] - x[i + h] * s[i] for i in range(h)] + [x[i + h] * c[i] + x[i] * s[i] for i in range(h)]
def forward(Wd, ids):
    x = [list(Wd["embed_tokens.weight"][t]) for t in ids]
    for l in range(L):
        p = f"layers.{l}."
        hs = [rms(r, Wd[p + "input_layernorm.weight"]) for r in x]
        qs, ks, vs = [], [], []
        for t, h in enumerate(hs):
            q, k, v = mv(Wd[p + "self_attn.q_proj.weight"], h), mv(Wd[p + "self_attn.k_proj.weight"], h), mv(Wd[p + "self_attn.v_proj.weight"], h)
            qs.append([rope(rms(q[j * HD:(j + 1) * HD], Wd[p + "self_attn.q_norm.weight"]), t) for j in range(NH)])
            ks.append([rope(rms(k[j * HD:(j + 1) * HD], Wd[p + "self_attn.k_norm.weight"]), t) for j in range(NKV)])
            vs.append([v[j * HD:(j + 1) * HD] for j in range(NKV)])
        for t in range(len(ids)):
            att = []
            for j in range(NH):
                g = j // (NH // NKV)
                sc = [sum(a * b for a, b in zip(qs[t][j], ks[u][g])) / math.sqrt(HD) for u in range(t + 1)]
                m = max(sc); e = [math.exp(s - m) for s in sc]; z = sum(e)
                att += [sum(e[u] / z * vs[u][g][d] for u in range(t + 1)) for d in range(HD)]
            o = mv(Wd[p + "self_attn.o_proj.weight"], att)
            x[t] = [a + b for a, b in zip(x[t], o)]
        for t in range(len(ids)):
            h = rms(x[t], Wd[p + "post_attention_layernorm.weight"])
            gt, up = mv(Wd[p + "mlp.gate_proj.weight"], h), mv(Wd[p + "mlp.up_proj.weight"], h)
            a = [g / (1 + math.exp(-g)) * u for g, u in zip(gt, up)]
            d = mv(Wd[p + "mlp.down_proj.weight"], a)
            x[t] = [a + b for a, b in zip(x[t], d)]
    return rms(x[-1], Wd["norm.weight"])
def norm(v):
    n = max(math.sqrt(sum(a * a for a in v)), 1e-12); return [a / n for a in v]

g = random.Random(9)
lens = [1, 5, 13, 40, 100]
ids = [[g.randrange(0, 256) for _ in range(n - 1)] + [EOT] for n in lens]
ref = {"versions": {"implementation": "make_qwen3_fixture_stdlib.py (float64 Python)"}, "ids": ids, "embeddings": {}}
for name, Wd in [("f32", W), ("mlx8", WQ)]:
    out = {"lasttoken": [], "lasttoken_norm": []}
    for s in ids:
        h = forward(Wd, s)
        out["lasttoken"].append(h); out["lasttoken_norm"].append(norm(h))
    ref["embeddings"][name] = out
json.dump(ref, open(os.path.join(here, "qwen3-reference.json"), "w"))
print("wrote qwen3-last, qwen3-last-mlx8 and qwen3-reference.json")
