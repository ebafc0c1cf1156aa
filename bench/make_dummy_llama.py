"""Write Llama-2-shaped configs (fp16 and AWQ 4-bit) for `--load-format dummy` runs: real kernels and
real memory with random weights, no download.
Usage: python bench/make_dummy_llama.py DIR [TOKENIZER_DIR] [--shape 7b|13b|70b] [--vocab N]
(tokenizer default: the tiny model's; shape default 7b; --vocab N sets vocab_size, e.g. to the
tokenizer's 2,048 so that random weights' tokens decode to visible text)"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

TINY = Path(__file__).resolve().parent.parent / "assets" / "tiny" / "bf16"
LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "vocab_size": 32000,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
}
SHAPES = {
    "7b": LLAMA2_7B,
    "13b": {
        **LLAMA2_7B,
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
    },
    "70b": {
        **LLAMA2_7B,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
    },
}
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def main(out: Path, tokenizer: Path = TINY, shape: str = "7b", vocab: int | None = None) -> None:
    """Write out/fp16 and out/awq, each with the tiny model's tokenizer."""
    for name, extra in (("fp16", {}), ("awq", {"quantization_config": AWQ})):
        if vocab:
            extra = {**extra, "vocab_size": vocab}
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps({**SHAPES[shape], **extra}, indent=2))
        for f in tokenizer.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens")):
                shutil.copy(f, d / f.name)


if __name__ == "__main__":
    args = sys.argv[1:]
    size, vocab = "7b", None
    if "--shape" in args:
        i = args.index("--shape")
        size = args[i + 1]
        del args[i : i + 2]
    if "--vocab" in args:
        i = args.index("--vocab")
        vocab = int(args[i + 1])
        del args[i : i + 2]
    main(Path(args[0]), *(Path(a) for a in args[1:2]), shape=size, vocab=vocab)
