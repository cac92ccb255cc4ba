# Sentence-transformers reference embeddings for the committed embedding
# fixtures of this folder (run where torch, transformers and
# sentence-transformers are installed; CPU, float32 compute, half weights
# widened):
#   python3 make_st_reference.py EMBED_DIR OUT.json [NOMIC_CODE_DIR]
# For each fixture it writes
#   - "ids"/"embeddings": the reference token sequences of the fixture's
#     *-reference.json run as one right-padded batch through the model that
#     transformers loads from the folder, pooled by sentence-transformers'
#     Pooling (mean, cls, lasttoken) with and without its Normalize;
#   - "texts"/"encode": SentenceTransformer(folder).encode(texts, prompt_name=p)
#     for every prompt of the folder ("" is no prompt name: the folder's
#     default), which runs the folder's own tokenizer, prompt, truncation to
#     max_seq_length, pooling and Normalize; "tokens" holds the ids it ran.
# nomic_bert has no model class in transformers: NOMIC_CODE_DIR holds the
# model code published with nomic-embed-text-v1.5 (modeling_hf_nomic_bert.py,
# configuration_hf_nomic_bert.py), which the script copies into a copy of the
# folder with the auto_map that hub copy carries, so that sentence-transformers
# loads it as it does from the hub (trust_remote_code). Those files are not
# part of this repository. The MLX 8-bit Qwen3 folder is dequantized (scale·q +
# bias per group) into float32 first, since transformers cannot read MLX.
import json, os, shutil, sys, tempfile, traceback
import torch, transformers, sentence_transformers as st
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Pooling, Normalize
from safetensors.torch import load_file, save_file

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
src, out_file = sys.argv[1], sys.argv[2]
nomic_code = sys.argv[3] if len(sys.argv) > 3 else None
tmp = tempfile.mkdtemp()
TEXTS = [
    "hello world",
    "Héllo, WORLD! Ça va? naïve café",
    "中文 mixed with English 日本",
    "the quick brown fox jumps over the lazy dog",
    "a",
    "  spaced   out\ttext\nwith lines  ",
    "unbelievable tokenization: re-running, don't stop!",
    " ".join(["word"] * 40 + ["tail", "end"] * 30),  # longer than max_seq_length
]
SHIM = """
import torch
def rearrange(x, pattern, **k):
    if pattern == "... (three h d) -> ... three h d":
        return x.unflatten(-1, (k["three"], -1, k["d"]))
    if pattern in ("b s three h d -> b h three s d", "b h three s d -> b s three h d"):
        return x.permute(0, 3, 2, 1, 4)
    if pattern == "b h s three d -> b s three h d":
        return x.permute(0, 2, 3, 1, 4)
    if pattern in ("... h d -> ... (h d)", "... d two -> ... (d two)"):
        return x.flatten(-2)
    if pattern == "s -> s 1":
        return x.unsqueeze(-1)
    raise NotImplementedError(pattern)
def repeat(x, pattern, **k):
    if pattern == "... d -> ... 1 (2 d)":
        return torch.cat([x, x], dim=-1).unsqueeze(-2)
    if pattern == "... d -> ... 1 (d 2)":
        return x.repeat_interleave(2, dim=-1).unsqueeze(-2)
    raise NotImplementedError(pattern)
"""
FIXTURES = {  # folder: its reference file (for the ids)
    "bert-mean": "reference.json", "bert-cls": "reference.json", "bert-last": "reference.json",
    "nomic-mean": "nomic-reference.json", "xlmr-mean": "xlmr-reference.json",
    "qwen3-last": "qwen3-reference.json", "qwen3-last-mlx8": "qwen3-reference.json",
}

try:
    import einops  # nomic's model code imports it
    EINOPS = einops.__version__
except ImportError:
    # Not installed there: the few rearrange/repeat patterns nomic's text
    # model uses, spelled out in torch.
    EINOPS = "absent; the patterns nomic_bert uses written out in torch"
    open(os.path.join(tmp, "einops.py"), "w").write(SHIM)
    sys.path.insert(0, tmp)

COMPAT = ""
if not hasattr(transformers.PreTrainedModel, "get_extended_attention_mask"):
    # nomic's model code calls this transformers 4 helper, gone in 5: a
    # [batch, seq] 0/1 mask as an additive [batch, 1, 1, seq] one.
    def get_extended_attention_mask(self, mask, shape, *args, **kwargs):
        m = mask[:, None, None, :].to(self.dtype)
        return (1.0 - m) * torch.finfo(self.dtype).min
    transformers.PreTrainedModel.get_extended_attention_mask = get_extended_attention_mask
    COMPAT = "get_extended_attention_mask: transformers 4's, added for nomic's model code"


def prepare(name):
    """A copy of the folder that sentence-transformers can load."""
    d = os.path.join(tmp, name)
    shutil.copytree(os.path.join(src, name), d)
    os.makedirs(os.path.join(d, "2_Normalize"), exist_ok=True)
    cfg_path = os.path.join(d, "config.json")
    cfg = json.load(open(cfg_path))
    if cfg.get("model_type") == "nomic_bert":
        for f in ["modeling_hf_nomic_bert.py", "configuration_hf_nomic_bert.py"]:
            shutil.copy(os.path.join(nomic_code, f), d)
        cfg["auto_map"] = {"AutoConfig": "configuration_hf_nomic_bert.NomicBertConfig",
                           "AutoModel": "modeling_hf_nomic_bert.NomicBertModel"}
    if "quantization" in cfg:
        gs, bits = cfg["quantization"]["group_size"], cfg["quantization"]["bits"]
        sd = load_file(os.path.join(d, "model.safetensors"))
        deq = {}
        for k, v in sd.items():
            if k.endswith(".scales") or k.endswith(".biases"):
                continue
            base = k[: -len(".weight")]
            if k.endswith(".weight") and base + ".scales" in sd:
                per = 32 // bits
                q = v.to(torch.int64) & 0xFFFFFFFF
                q = torch.stack([(q >> (bits * i)) & ((1 << bits) - 1) for i in range(per)], dim=-1)
                q = q.reshape(v.shape[0], -1).to(torch.float32)
                s = sd[base + ".scales"].float().repeat_interleave(gs, dim=1)
                b = sd[base + ".biases"].float().repeat_interleave(gs, dim=1)
                deq[k] = (q * s + b).contiguous()
            else:
                deq[k] = v.float().contiguous()
        save_file(deq, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        del cfg["quantization"]
    json.dump(cfg, open(cfg_path, "w"), indent=1)
    return d


def check_weights(model, d):
    """Every tensor of the folder's file must be the loaded model's own."""
    have = model[0].auto_model.state_dict()
    used, n = set(), 0
    for k, v in load_file(os.path.join(d, "model.safetensors")).items():
        c = next((c for c in [k, k.removeprefix("model."), k.removeprefix("roberta."), k.removeprefix("bert.")]
                  if c in have), None)
        if c is None:
            raise ValueError(f"{k} is not in the loaded model")
        if not torch.equal(v.float(), have[c].float()):
            raise ValueError(f"{k} differs in the loaded model")
        used.add(c)
        n += 1
    return {"checked": n, "model_keys_not_in_file": sorted(set(have) - used)}


def pooled(model, ids, pad_left=False):
    T = max(len(s) for s in ids)
    x = torch.zeros(len(ids), T, dtype=torch.long)
    mask = torch.zeros(len(ids), T, dtype=torch.long)
    for i, s in enumerate(ids):
        x[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    feats = {"input_ids": x, "attention_mask": mask}
    if "token_type_ids" in model[0].tokenizer.model_input_names:
        feats["token_type_ids"] = torch.zeros_like(x)
    h = model[0](feats)["token_embeddings"]
    dim = h.shape[-1]
    res = {}
    for pool in ["mean", "cls", "lasttoken"]:
        e = Pooling(dim, pooling_mode=pool)({"token_embeddings": h, "attention_mask": mask})["sentence_embedding"]
        res[pool] = e.tolist()
        res[pool + "_norm"] = Normalize()({"sentence_embedding": e})["sentence_embedding"].tolist()
    return res


ref = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                    "sentence_transformers": st.__version__, "einops": EINOPS, "compat": COMPAT},
       "texts": TEXTS, "fixtures": {}}
for name, ref_name in FIXTURES.items():
    try:
        d = prepare(name)
        # float32 compute for half weights too (transformers 5 would run
        # them in their own dtype): the weights as stored, exactly widened.
        m = SentenceTransformer(d, device="cpu", trust_remote_code=True, model_kwargs={"dtype": torch.float32})
        m.eval()
        ids = json.load(open(os.path.join(src, ref_name)))["ids"]
        entry = {"weights": check_weights(m, d), "ids": ids, "embeddings": pooled(m, ids), "max_seq_length": m.max_seq_length,
                 "model_class": type(m[0].auto_model).__name__, "encode": {}}
        entry["tokens"] = {}
        for p in [None] + sorted(m.prompts):
            e = m.encode(TEXTS, prompt_name=p, convert_to_tensor=True, batch_size=4)
            entry["encode"][p or ""] = e.float().tolist()
            # The ids encode ran: the prompt (the default one for None) put
            # before each text, then the model's own tokenize.
            prompt = m.prompts.get(p or m.default_prompt_name or "", "")
            f = m.tokenize([prompt + t for t in TEXTS])
            entry["tokens"][p or ""] = [[int(i) for i, a in zip(ids, mask) if a]
                                        for ids, mask in zip(f["input_ids"].tolist(), f["attention_mask"].tolist())]
        ref["fixtures"][name] = entry
        print(name, "ok", entry["model_class"], "prompts", sorted(m.prompts), flush=True)
    except Exception:
        print(name, "FAILED", flush=True)
        traceback.print_exc()
def short(x):  # float32 needs 9 significant digits
    if isinstance(x, float):
        return float("%.9g" % x)
    if isinstance(x, list):
        return [short(v) for v in x]
    if isinstance(x, dict):
        return {k: short(v) for k, v in x.items()}
    return x


json.dump(short(ref), open(out_file, "w"), separators=(",", ":"))
print(ref["versions"], sorted(ref["fixtures"]))
