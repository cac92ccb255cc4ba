#!/usr/bin/env python3
"""Make the small reference models committed beside this script, so the engine's reference
tests run on a bare clone (without ../shared).

It drives the project's shared generator, make_reference.py (../shared/tools), as a module:
that tool already trains a byte-level BPE tokenizer and a model with transformers, writes the
model folder (float32 or MLX affine-quantized) and records what transformers computes on it
in reference.json. This script adds what the shared tool lacks and keeps the folder small:

  * the SmolLM3 architecture (model_type "smollm3": Llama with NoPE layers), with four layers
    and no_rope_layer_interval 4, so layers 0-2 use RoPE and layer 3 uses none;
  * an MLP half the shared tool's width (intermediate_size = 2 * hidden), and tied embeddings
    for Qwen3 and SmolLM3 as their small published models have, to save bytes.

Run it where torch and transformers (with SmolLM3Config) are installed; README.md beside it
gives the exact commands, versions and corpus of the committed run.
"""
import argparse
import importlib.util
import os
import sys

# Which architectures, with how many layers and which stored variants.
GROUPS = [
    ("llama", 2, "none,mlx4,mlx8"),
    ("qwen2,qwen3,gemma3_text", 2, "none,mlx4"),
    ("smollm3", 4, "none,mlx4"),
]


def load_tool(path):
    spec = importlib.util.spec_from_file_location("make_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def wrap_arch_config(tool):
    """Replace tool.arch_config (looked up at call time by tool.one_arch) with one that knows
    smollm3 and narrows every model's MLP."""
    base = tool.arch_config

    def arch_config(arch, hidden, layers, vocab, seed):
        if arch == "smollm3":
            cfg = tool.AutoConfig.for_model(
                "smollm3", vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=4, num_key_value_heads=2, intermediate_size=hidden * 2,
                max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=5e6,
                no_rope_layer_interval=4, use_sliding_window=False,
                bos_token_id=0, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)
            want = [int((i + 1) % 4 != 0) for i in range(layers)]
            if list(cfg.no_rope_layers) != want:
                raise SystemExit(f"smollm3: no_rope_layers {cfg.no_rope_layers}, expected {want}")
            return cfg
        cfg = base(arch, hidden, layers, vocab, seed)
        cfg.intermediate_size = hidden * 2
        if arch == "qwen3":
            cfg.tie_word_embeddings = True
        return cfg

    tool.arch_config = arch_config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "../../../../shared/tools/make_reference.py"))
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-steps", default="800")
    ap.add_argument("--hidden", default="64")
    ap.add_argument("--vocab", default="512")
    ap.add_argument("--seed", default="1")
    a = ap.parse_args()
    tool = load_tool(a.tool)
    wrap_arch_config(tool)
    for archs, layers, quants in GROUPS:
        sys.argv = ["make_reference.py", "--out", a.out, "--corpus", a.corpus, "--archs", archs,
                    "--layers", str(layers), "--hidden", a.hidden, "--vocab", a.vocab,
                    "--seed", a.seed, "--train-steps", a.train_steps, "--quant", quants,
                    "--dtype", "float32"]
        print("make_reference", " ".join(sys.argv[1:]), flush=True)
        tool.main()


if __name__ == "__main__":
    main()
