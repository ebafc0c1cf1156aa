"""Build the shipped offline task (assets/eval/): multiple-choice docstring endings from the tiny model's corpus.

Each item is the start of a standard-library docstring's first sentence; the choices are its true
ending and three endings of other docstrings with the same number of words. The tiny model read
these docstrings in training, so bf16 picks the true ending well above chance (1 in 4), and a
quantized copy shows how much of that it kept.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

TASK_NAME = "stdlib_docstrings"
ITEMS = 200
CHOICES = 4
SEED = 1234
MIN_WORDS, MAX_WORDS = 8, 24  # first sentences shorter than this give too little context
ENDING_WORDS = (3, 8)  # the ending is the last 3..8 words of the sentence, at most half of it
ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "eval"


def first_sentence(doc: str) -> str | None:
    """The docstring's first sentence without its full stop, when it is plain ASCII prose of usable length."""
    para = " ".join(doc.split("\n\n", 1)[0].split())
    sentence = re.split(r"(?<=[a-z0-9)])\.(\s|$)", para, maxsplit=1)[0].rstrip(".")
    words = sentence.split()
    if not (MIN_WORDS <= len(words) <= MAX_WORDS) or not sentence.isascii():
        return None
    return sentence


def split_sentence(sentence: str, rng: random.Random) -> tuple[str, str]:
    """Cut a sentence into (start, ending); the ending is 3..8 words and at most half the sentence."""
    words = sentence.split()
    n = rng.randint(ENDING_WORDS[0], min(ENDING_WORDS[1], len(words) // 2))
    return " ".join(words[:-n]), " ".join(words[-n:])


def build_items(docs: list[str], *, items: int = ITEMS, seed: int = SEED) -> list[dict[str, object]]:
    """The task's items, reproducible from the docstrings and the seed: question, choices, answer."""
    rng = random.Random(seed)
    sentences = list(dict.fromkeys(s for s in map(first_sentence, docs) if s))
    cut = [split_sentence(s, rng) for s in sentences]
    by_length: dict[int, list[str]] = defaultdict(list)
    for _start, ending in cut:
        by_length[len(ending.split())].append(ending)
    chosen = sorted(rng.sample(range(len(cut)), min(items, len(cut))))
    out: list[dict[str, object]] = []
    for doc_id in chosen:
        start, gold = cut[doc_id]
        pool = sorted({e for e in by_length[len(gold.split())] if e.lower() != gold.lower()})
        if len(pool) < CHOICES - 1:
            continue
        choices = [gold, *rng.sample(pool, CHOICES - 1)]
        rng.shuffle(choices)
        out.append({"question": start, "choices": choices, "answer": choices.index(gold)})
    return out


def card(items: list[dict[str, object]], docs: int) -> str:
    """The task's card: what it is, how it was made, and what chance is."""
    return f"""# {TASK_NAME}: which ending did the docstring have?

{len(items)} multiple-choice items, {CHOICES} choices each. **Chance is {100 / CHOICES:.0f} %** (one in {CHOICES}).

Each question is the start of the first sentence of a Python {sys.version.split()[0]} standard-library
docstring; the choices are its true ending and the endings of three other docstrings' first
sentences with the same number of words (3 to 8), in a shuffled order. The model scores each choice
by its log-likelihood after the question (lm-eval's `multiple_choice`: `acc` is the share of items
whose true ending has the highest log-likelihood). The distractors have the true ending's number of
words, so a length bias of the summed log-likelihood helps no choice much.

## How it was made
`python -m playground.tiny.eval_task` (seed {SEED}) reads the tiny model's training corpus
(`playground.tiny.train.load_corpus`: {docs} docstrings of the Python standard library, see
docs/tiny-model.md), keeps first sentences of {MIN_WORDS}-{MAX_WORDS} ASCII words, cuts each at a random
point, and samples {ITEMS} of them. The same Python version and seed write the same file.

## What it measures
The tiny model read these docstrings in training, so the task measures how much of what the
bf16 model learnt a quantized copy keeps, not general knowledge. A larger model that never saw the
standard library's docstrings would also beat chance, from grammar and sense alone.

## Format
`{TASK_NAME}.jsonl`: one JSON object a line, `{{"question": str, "choices": [str, ...], "answer": int}}`,
the format the Accuracy tab and `python -m playground eval --task PATH.jsonl` accept for a user's own task.
"""


def main(argv: list[str] | None = None) -> int:
    """Write assets/eval/stdlib_docstrings.jsonl and its card."""
    from playground.tiny.train import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args(argv)
    docs = load_corpus()
    items = build_items(docs)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(item) + "\n" for item in items)
    (args.out / f"{TASK_NAME}.jsonl").write_text(lines, encoding="utf-8")
    (args.out / f"{TASK_NAME}.md").write_text(card(items, len(docs)), encoding="utf-8")
    print(f"{len(items)} items -> {args.out / (TASK_NAME + '.jsonl')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
