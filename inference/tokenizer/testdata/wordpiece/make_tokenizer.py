#!/usr/bin/env python3
"""Writes a small BERT-style WordPiece tokenizer.json (our own few-hundred
entry vocabulary, uncased, with the BERT normalizer, pre-tokenizer,
[CLS]/[SEP] template and WordPiece decoder) and its tokenizer_config.json,
for the Go tokenizer tests and the tiny BERT embedding fixture.
Standard library only: python3 make_tokenizer.py"""
import json
import string

specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
chars = list(string.ascii_lowercase + string.digits + string.punctuation)
chars += list("你好世界中文七八九我想在工作天日本語")
chars += list("αβγδεπωабвгдежзик")
words = """the quick brown fox jump over lazy dog hello world how are you fine great
we they he she it is was be do done go say ok and or not in on at to of for with
from by as this that text token embed model search query document sentence vector
mean pool bert small tiny test code def return if else func main print int list
key value null true false html body class table user name select where like bob
number one two three red green blue apple work day time good bad new old""".split()
cont = """ing s ed er est ly ion tion al ize izer ment ness able ful less y es en
a e i o u n r t l d m k p b c g h f w v x z j q""".split()

vocab = []
seen = set()
for tok in specials + chars + words + ["##" + c for c in cont] + ["##" + c for c in string.digits]:
    if tok not in seen:
        seen.add(tok)
        vocab.append(tok)

added = [
    {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
     "normalized": False, "special": True}
    for i, t in enumerate(specials)
]
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": added,
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                   "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {
            "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
            "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
        },
    },
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}},
}
cfg = {
    "clean_up_tokenization_spaces": True,
    "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
    "mask_token": "[MASK]", "do_lower_case": True, "model_max_length": 512,
    "tokenizer_class": "BertTokenizer",
}
with open("tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False, indent=1)
    f.write("\n")
with open("tokenizer_config.json", "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=1)
    f.write("\n")
print(len(vocab), "tokens")
