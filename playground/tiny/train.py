"""Train the tiny Llama model on docstrings of the Python standard library."""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import torch

VOCAB_SIZE = 2048
SEQ_LEN = 256
BATCH_SIZE = 8
SEED = 1234
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]
SKIP_DIRS = {"site-packages", "test", "tests", "idlelib", "__pycache__", "turtledemo"}
# The model only ever saw docstrings, so a chat is rendered as plain text: each message on its
# own line, and the reply continues it like the next docstring paragraph.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}"
    "{% else %}{{ message['content'] }}\n{% endif %}{% endfor %}"
)
SAMPLE_PROMPTS = ["Return the", "This module provides", "The default value is"]


def clean_docstring(text: str) -> str | None:
    """Drop doctest lines and return the docstring, or None if it is unusable."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith((">>>", "... "))]
    doc = "\n".join(lines).strip()
    if len(doc) < 24:
        return None
    non_ascii = sum(1 for ch in doc if ord(ch) > 127)
    if non_ascii > 0.02 * len(doc):
        return None
    return doc


def source_docstrings() -> list[str]:
    """Collect docstrings from the pure-Python stdlib sources, in file order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            top = path.relative_to(stdlib).parts[0].removesuffix(".py")
            if not name.endswith(".py") or top not in sys.stdlib_module_names:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node, clean=True)
                    if doc:
                        out.append(doc)
    return out


def builtin_docstrings() -> list[str]:
    """Collect docstrings of the modules compiled into the interpreter (builtins, sys, ...)."""
    import importlib
    import inspect

    out: list[str] = []
    for mod_name in sorted(sys.builtin_module_names):
        if mod_name.startswith("_") and mod_name not in {"_io", "_collections", "_functools"}:
            continue
        module = importlib.import_module(mod_name)
        objects: list[Any] = [module] + [getattr(module, n) for n in sorted(dir(module)) if not n.startswith("_")]
        for obj in objects:
            doc = inspect.getdoc(obj)
            if doc:
                out.append(doc)
    return out


def load_corpus() -> list[str]:
    """Return the deduplicated, cleaned docstring corpus in a fixed order."""
    seen: set[str] = set()
    docs: list[str] = []
    for raw in builtin_docstrings() + source_docstrings():
        doc = clean_docstring(raw)
        if doc is not None and doc not in seen:
            seen.add(doc)
            docs.append(doc)
    return docs


def train_tokenizer(docs: list[str]) -> Any:
    """Train a byte-level BPE tokenizer that adds <s> in front of every text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return tok


def save_tokenizer(tok: Any, out: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "model_max_length": 1024,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def build_model(tok: Any) -> Any:
    """Create the small LlamaForCausalLM; every linear has in % 128 == 0 and out % 64 == 0."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
        pad_token_id=tok.token_to_id("<pad>"),
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def lr_at(progress: float, step: int, peak: float, warmup: int = 30) -> float:
    """Linear warmup, then cosine decay to 10% of peak by the end of the time (or step) budget."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def eval_loss(model: torch.nn.Module, data: torch.Tensor, batches: int = 8) -> float:
    """Mean loss over fixed, evenly spaced windows of held-out tokens."""
    model.eval()
    starts = torch.linspace(0, len(data) - SEQ_LEN - 2, batches * BATCH_SIZE).long()
    losses = []
    for i in range(batches):
        x = torch.stack([data[s : s + SEQ_LEN] for s in starts[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]])
        losses.append(model(input_ids=x, labels=x).loss.item())
    model.train()
    return sum(losses) / len(losses)


@torch.no_grad()
def sample(model: Any, tok: Any, prompt: str, tokens: int = 40) -> str:
    """Greedy continuation of a prompt, decoded to text."""
    model.eval()
    ids = torch.tensor([tok.encode(prompt).ids])
    out = model.generate(ids, max_new_tokens=tokens, do_sample=False, eos_token_id=tok.token_to_id("</s>"))
    model.train()
    return tok.decode(out[0].tolist()[ids.shape[1] :])


def train(out: Path, minutes: float, max_steps: int | None = None, lr: float = 2e-3) -> dict[str, Any]:
    """Build corpus and tokenizer, train the model for a time budget and save everything."""
    torch.manual_seed(SEED)
    random.seed(SEED)
    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    docs = load_corpus()
    print(f"corpus: {len(docs)} docstrings, {sum(map(len, docs))} characters", flush=True)
    tok = train_tokenizer(docs)
    eos = tok.token_to_id("</s>")
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids + [eos])
    data = torch.tensor(ids, dtype=torch.long)
    split = int(len(data) * 0.98)
    train_data, val_data = data[:split], data[split:]
    print(f"tokens: {len(data)} (train {len(train_data)}, val {len(val_data)})", flush=True)

    model = build_model(tok)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(SEED)
    budget = minutes * 60.0
    start = time.monotonic()
    step, loss_ema = 0, None
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= budget or (max_steps is not None and step >= max_steps):
            break
        progress = max(elapsed / budget, step / max_steps if max_steps else 0.0)
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, step, lr)
        starts = torch.randint(0, len(train_data) - SEQ_LEN - 1, (BATCH_SIZE,), generator=gen)
        x = torch.stack([train_data[s : s + SEQ_LEN] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        if step % 20 == 0:
            lr_now = opt.param_groups[0]["lr"]
            print(
                f"step {step:5d}  {elapsed:7.1f}s  lr {lr_now:.2e}  loss {loss.item():.3f}  ema {loss_ema:.3f}",
                flush=True,
            )
        step += 1
    train_seconds = time.monotonic() - start
    val = eval_loss(model, val_data)
    print(f"done: {step} steps in {train_seconds:.0f}s, train loss ema {loss_ema:.3f}, val loss {val:.3f}", flush=True)
    samples = {p: sample(model, tok, p) for p in SAMPLE_PROMPTS}
    for p, s in samples.items():
        print(f"sample: {p!r} -> {s!r}", flush=True)

    save_tokenizer(tok, out)
    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["torch_dtype"] = "bfloat16"
    config["dtype"] = "bfloat16"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    info = {
        "command": f"python -m playground.tiny.train --out {out} --minutes {minutes:g}"
        + (f" --max-steps {max_steps}" if max_steps is not None else ""),
        "minutes": minutes,
        "steps": step,
        "train_seconds": round(train_seconds, 1),
        "tokens_seen": step * BATCH_SIZE * SEQ_LEN,
        "train_loss_ema": round(float(loss_ema or 0.0), 4),
        "val_loss": round(val, 4),
        "parameters": n_params,
        "corpus_docstrings": len(docs),
        "corpus_tokens": len(data),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "samples_greedy": samples,
    }
    (out / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output checkpoint directory")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    args = parser.parse_args(argv)
    train(args.out, args.minutes, args.max_steps, args.lr)


if __name__ == "__main__":
    main()
