#!/usr/bin/env python3
"""Writes a small XLM-R-style Unigram tokenizer.json (our own few-hundred
piece vocabulary with seeded scores; a Sequence normalizer of Precompiled and
Replace(" {2,}" -> " "); Metaspace pre-tokenizer and decoder; the <s> $A </s>
template) and its tokenizer_config.json, for the Go tokenizer tests.

The precompiled_charsmap is built here: a darts-clone double-array trie
(the layout SentencePiece writes) mapping characters to their normalized
form. Its rules are what the JS oracle's Precompiled normalizer does (drop
some controls, turn odd spaces into " ", NFKC), for every character of
../oracle/corpus.json and a few more, plus the base+mark sequences of the
corpus that NFKC composes, so the oracle and a charsmap reader agree.
Standard library only: python3 make_tokenizer.py"""
import base64
import json
import random
import string
import struct
import unicodedata

REMOVE = set(range(0x01, 0x09)) | {0x0B} | set(range(0x0E, 0x20)) | {0x7F, 0x8F, 0x9F}
SPACE = {0x09, 0x0A, 0x0C, 0x0D, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x2581, 0x3000, 0xFEFF, 0xFFFD}
SPACE |= set(range(0x2000, 0x2010))


def js_norm_char(c):
    o = ord(c)
    if o in REMOVE:
        return ""
    if o in SPACE:
        return " "
    if c == "\uFF5E":
        return c
    return unicodedata.normalize("NFKC", c)


with open("../oracle/corpus.json", encoding="utf-8") as f:
    corpus = json.load(f)["texts"]

rules = {}
chars = set("".join(corpus))
chars |= set("ＡＢＣａｂｃ１２３ﬁﬂ²³½①②Ⅻ㎏™…\u00a0\u3000\u2003\t\r\n\x0b\x7f")
for c in sorted(chars):
    n = js_norm_char(c)
    if n != c and "\0" not in c:
        rules[c] = n
for text in corpus:
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            j += 1
        seq = text[i:j]
        if j - i > 1:
            composed = unicodedata.normalize("NFKC", seq)
            if composed != "".join(js_norm_char(c) for c in seq):
                rules[seq] = composed
        i = j

# Pool of NUL-terminated replacements.
pool = bytearray()
offsets = {}
for n in sorted(set(rules.values())):
    offsets[n] = len(pool)
    pool += n.encode("utf-8") + b"\0"

# Trie of the keys' UTF-8 bytes.
root = {}
for k, n in rules.items():
    node = root
    for b in k.encode("utf-8"):
        node = node.setdefault(b, {})
    node[None] = offsets[n]

units = [0]
used = {0}
bases = set()  # each base serves one node, so a label check cannot pass in another's block


def unit_at(pos):
    while len(units) <= pos:
        units.append(0)


queue = [(root, 0)]
while queue:
    node, pos = queue.pop(0)
    labels = sorted(k for k in node if k is not None)
    if None in node:
        labels = [0] + labels
    base = 1
    while base in bases or any((base ^ l) in used or (base ^ l) == 0 for l in labels):
        base += 1
    bases.add(base)
    offset = pos ^ base
    assert offset < 1 << 21
    unit_at(pos)
    units[pos] |= offset << 10
    for l in labels:
        p = base ^ l
        used.add(p)
        unit_at(p)
        if l == 0:
            units[p] = node[None] | 1 << 31
        else:
            units[p] = l | (256 if None in node[l] else 0)
            queue.append((node[l], p))

blob = struct.pack("<I", 4 * len(units)) + b"".join(struct.pack("<I", u) for u in units) + bytes(pool)
charsmap = base64.b64encode(blob).decode()

# Vocabulary: XLM-R's four specials, characters, then words and subwords
# with seeded scores; <mask> last.
rng = random.Random(19)
specials = ["<s>", "<pad>", "</s>", "<unk>"]
singles = list(string.ascii_letters + string.digits + string.punctuation)
singles += list("éèàüöñçÉ你好世界中文日本語我想在工作天七八九αβγδπωабвгдежзикмнорст")
words = """the quick brown fox jumps over lazy dog hello world how are you fine great
we they he she it is was be do done go say ok and or not in on at to of for with
from by as this that text token embed model search query document sentence vector
Hello The Hel lo wor ld qu ick jump ing ed er est ly tion al ment ness able
ful less un re pre con com pro ex de dis über naïve café élève français
numbers code def return if else func main print int list key value null true
false html body class table user name select where like Français""".split()
subs = """ing ed er est ly ion tion al ize ment ness able ful less es en an on or ar
th he in er re nd at ou it is te st ng ll ve co me ow lo el wo rl ld ck ui ic
12 123 34 00 ’s 's ,""".split()
vocab = []
seen = set(specials)
for s in specials:
    vocab.append([s, 0.0])


def add(piece, score):
    if piece not in seen:
        seen.add(piece)
        vocab.append([piece, round(score, 4)])


add("▁", -3.0)
for c in singles:
    add(c, -8.0 - 3.0 * rng.random())
    if rng.random() < 0.4:
        add("▁" + c, -7.0 - 3.0 * rng.random())
for w in words:
    add("▁" + w, -4.0 - 0.3 * len(w) - 4.0 * rng.random())
    if rng.random() < 0.5:
        add(w, -5.0 - 0.3 * len(w) - 4.0 * rng.random())
for s in subs:
    add(s, -5.0 - 0.5 * len(s) - 3.0 * rng.random())
    add("▁" + s, -6.0 - 0.5 * len(s) - 3.0 * rng.random())
vocab.append(["<mask>", 0.0])


def special(i, t, lstrip=False):
    return {"id": i, "content": t, "single_word": False, "lstrip": lstrip, "rstrip": False,
            "normalized": False, "special": True}


tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [special(i, t) for i, t in enumerate(specials)] + [special(len(vocab) - 1, "<mask>", True)],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Precompiled", "precompiled_charsmap": charsmap},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
    ]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "special_tokens": {
            "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
            "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
        },
    },
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
}
cfg = {
    "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
    "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
    "clean_up_tokenization_spaces": True, "model_max_length": 512,
    "tokenizer_class": "XLMRobertaTokenizer",
}
with open("tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False, indent=1)
    f.write("\n")
with open("tokenizer_config.json", "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=1)
    f.write("\n")
print(len(vocab), "pieces,", len(rules), "normalization rules,", len(blob), "charsmap bytes")
