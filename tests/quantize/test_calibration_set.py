"""The worker's calibration set, built in the real quantizer environment (.venv-quant)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from playground.quantize.runner import quant_python

ROOT = Path(__file__).resolve().parents[2]

# Runs in the quantizer's Python: the worker's own calibration_set on the bundled text with the tiny
# model's tokenizer. datasets' own fingerprinting is made to fail loudly, as it does on Python 3.12
# (it pickles pyarrow's module by value and trips on MonthDayNano, docs/NOTES.md): the worker must
# not need it.
_BUILD = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import datasets.arrow_dataset as ad
def refuse(*_a, **_k):
    raise RuntimeError("datasets hashed the table itself")
ad.generate_fingerprint = refuse
from transformers import AutoTokenizer
from playground.quantize.worker import calibration_set
tok = AutoTokenizer.from_pretrained(sys.argv[2])
ds, used, tokens = calibration_set(tok, sys.argv[3], 4, 64)
windows = [[int(t) for t in w] for w in ds["input_ids"]]
picked = ds.shuffle(seed=42).select(range(2))  # what llm-compressor does with it next
print(json.dumps({"used": used, "tokens": tokens, "lengths": [len(w) for w in windows], "rows": len(picked),
                  "fingerprint": ds._fingerprint,
                  "of_windows": hashlib.sha256(json.dumps(windows).encode()).hexdigest()[:16]}))
"""


def test_calibration_set_needs_no_table_hashing() -> None:
    python, _ = quant_python()
    done = subprocess.run(
        [str(python), "-c", _BUILD, str(ROOT), str(ROOT / "assets/tiny/bf16"), str(ROOT / "assets/calibration.txt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["used"] == 4 and got["lengths"] == [64] * 4 and got["tokens"] == 4 * 64  # BOS included
    assert got["rows"] == 2
    assert got["fingerprint"] == got["of_windows"]  # the worker's own: a hash of the windows themselves
