# Tiny random BERT encoder and its sentence-transformers reference embeddings
# for the Go embedding tests (runs where torch, transformers and
# sentence-transformers are installed; writes to $OUT). Weights: f32, f16 and
# bf16 copies of one model; references pool the float32 forward of each copy
# with sentence-transformers' Pooling (mean, cls, lasttoken) and Normalize
# over one right-padded batch of random token sequences ([CLS] ... [SEP]).
import json, os, torch, transformers, sentence_transformers as st
from transformers import BertConfig, BertModel
from sentence_transformers.models import Pooling, Normalize
torch.manual_seed(19)
c = BertConfig(vocab_size=259, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
m = BertModel(c, add_pooling_layer=False).eval()
with torch.no_grad():
    for p in m.parameters():
        p.add_(0.1 * torch.randn_like(p))  # make LayerNorm gains and biases non-trivial
g = torch.Generator().manual_seed(7)
lens = [3, 9, 17, 30, 41]
ids = [[2] + torch.randint(5, 259, (n - 2,), generator=g).tolist() + [3] for n in lens]
T = max(lens)
x = torch.zeros(len(ids), T, dtype=torch.long)
mask = torch.zeros(len(ids), T, dtype=torch.long)
for i, s in enumerate(ids):
    x[i, :len(s)] = torch.tensor(s)
    mask[i, :len(s)] = 1
o = os.environ["OUT"]
ref = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                    "sentence_transformers": st.__version__}, "ids": ids, "embeddings": {}}
for name, dt in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
    mm = BertModel(c, add_pooling_layer=False)
    mm.load_state_dict(m.state_dict())
    mm.to(dt).save_pretrained(f"{o}/{name}", safe_serialization=True)
    mm = mm.float().eval()
    with torch.no_grad():
        h = mm(input_ids=x, attention_mask=mask, token_type_ids=torch.zeros_like(x)).last_hidden_state
        out = {}
        for pool in ["mean", "cls", "lasttoken"]:
            e = Pooling(32, pooling_mode=pool)({"token_embeddings": h, "attention_mask": mask})["sentence_embedding"]
            out[pool] = e.tolist()
            out[pool + "_norm"] = Normalize()({"sentence_embedding": e})["sentence_embedding"].tolist()
    ref["embeddings"][name] = out
json.dump(ref, open(f"{o}/reference.json", "w"))
print(ref["versions"], os.listdir(o))
