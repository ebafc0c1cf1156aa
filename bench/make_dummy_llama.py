"""Write Llama-2-7B-shaped configs (fp16 and AWQ 4-bit) for `--load-format dummy` runs: real
kernels and real memory with random weights, no download.
Usage: python bench/make_dummy_llama.py DIR [TOKENIZER_DIR]   (tokenizer default: the tiny model's)"""

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
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def main(out: Path, tokenizer: Path = TINY) -> None:
    """Write out/fp16 and out/awq, each with the tiny model's tokenizer."""
    for name, extra in (("fp16", {}), ("awq", {"quantization_config": AWQ})):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps({**LLAMA2_7B, **extra}, indent=2))
        for f in tokenizer.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens")):
                shutil.copy(f, d / f.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:3]))
