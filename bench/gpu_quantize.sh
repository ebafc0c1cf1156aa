#!/usr/bin/env bash
# Quantizing on the lent GPU (issue 11): quantize a small Llama-shaped model (random init, built here) with the
# playground's own CLI (llm-compressor 0.14 in its own environment) to FP8_DYNAMIC and W4A16, then
# load each in vLLM and record which linear kernel vLLM picked and how long quantizing took.
# Everything lands in $OUT/quant.tar.gz, with summary.txt beside it.
#
# Needs, as for bench/gpu_check.sh (shared/device/README.md):
#   /tmp/site       vLLM 0.26 and the app's own wheels, installed with --target (PYTHONPATH)
#   $QUANT_WHEELS   wheels for the quantizer's environment: llmcompressor==0.14.0.1 and what it needs
#                   that the machine lacks (compressed-tensors, loguru, datasets, ...). The venv is made
#                   with --system-site-packages so it reuses the machine's CUDA torch; if llm-compressor
#                   refuses that torch, the pip log in the tarball says so.
#   or QUANT_PY     an interpreter that already has llm-compressor (skips making the venv)
# Env: LAYERS (8), HIDDEN (1024), INTER (2816), SAMPLES (32), SEQ_LEN (512), SCHEMES ("FP8_DYNAMIC W4A16"),
# EAGER (1: vLLM loads without torch.compile and CUDA graphs, ~3 min sooner; the kernel it picks is the same).
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
export PLAYGROUND_DATA=${PLAYGROUND_DATA:-/tmp/pgquant}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
R=$(mktemp -d /tmp/gpuquant.XXXX)
W=/tmp/qgpu; rm -rf "$W"; mkdir -p "$W"
SCHEMES=${SCHEMES:-FP8_DYNAMIC W4A16}
t0=$SECONDS
finish() {
  cp -r "$PLAYGROUND_DATA/logs" "$R/playground-logs" 2>/dev/null
  for s in $SCHEMES; do [ -f "$W/$s/README.md" ] && cp "$W/$s/README.md" "$R/card-$s.md" && cp "$W/$s/config.json" "$R/config-$s.json"; done
  cp "$R/summary.txt" "$OUT/summary.txt" 2>/dev/null
  tar -czf "$OUT/quant.tar.gz" -C "$R" . && echo "results: $OUT/quant.tar.gz ($((SECONDS - t0)) s)"
}
trap finish EXIT
say() { echo "$*" | tee -a "$R/summary.txt"; }

nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv | tee "$R/gpu.csv"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$R/summary.txt"

# 1. The model: Llama shapes, random weights (bf16), the tiny model's tokenizer (no network here).
python3 - "$W/base" "${LAYERS:-8}" "${HIDDEN:-1024}" "${INTER:-2816}" > "$R/build.log" 2>&1 <<'EOF'
import shutil, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
out, layers, hidden, inter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=2048, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=hidden // 64, num_key_value_heads=max(hidden // 256, 1), head_dim=64,
                  max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                  tie_word_embeddings=False, dtype="bfloat16")
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(f"assets/tiny/bf16/{name}", out)
print("parameters", sum(p.numel() for p in LlamaForCausalLM(cfg).parameters()))
EOF
say "model: $(tail -1 "$R/build.log") (layers ${LAYERS:-8}, hidden ${HIDDEN:-1024}, intermediate ${INTER:-2816})"

# 2. The quantizer's own environment.
if [ -z "${QUANT_PY:-}" ]; then
  python3 -m venv --system-site-packages /tmp/qvenv
  /tmp/qvenv/bin/python -m pip install --no-index --find-links "${QUANT_WHEELS:-/tmp/wq}" llmcompressor==0.14.0.1 \
    > "$R/pip-quant.log" 2>&1 || say "pip install of llmcompressor failed: see pip-quant.log"
  QUANT_PY=/tmp/qvenv/bin/python
fi
export PLAYGROUND_QUANT_PYTHON=$QUANT_PY
$QUANT_PY -c 'import llmcompressor, compressed_tensors, torch; print("quant env: llmcompressor", llmcompressor.__version__, "compressed-tensors", compressed_tensors.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$R/summary.txt"

# 3. Quantize with the playground's CLI, then 4. load in vLLM and read the kernel it picked.
for s in $SCHEMES; do
  python3 -m playground quantize --model "$W/base" --scheme "$s" --samples "${SAMPLES:-32}" \
    --seq-len "${SEQ_LEN:-512}" --out "$W/$s" --json > "$R/quantize-$s.json" 2> "$R/quantize-$s.err"
  code=$?
  python3 - "$R/quantize-$s.json" "$s" "$code" >> "$R/summary.txt" 2>&1 <<'EOF'
import json, sys
path, scheme, code = sys.argv[1:]
try:
    r = json.load(open(path))
except ValueError:
    print(f"{scheme}: quantize exit {code}, no JSON (see quantize-{scheme}.err)"); sys.exit()
f = r.get("facts") or {}
p = r["predicted"]
vram = f"{p['peak_vram_bytes'] / 1e9:.2f}" if p.get("peak_vram_bytes") else "-"
print(f"{scheme}: {r['state']} in {r['seconds']:.1f} s (oneshot {f.get('quantize_seconds', 0):.2f} s) on {f.get('device')}; "
      f"weights {f.get('before_bytes', 0) / 1e6:.1f} -> {f.get('after_bytes', 0) / 1e6:.1f} MB "
      f"(predicted {p['after_bytes'] / 1e6:.1f}); peak RSS {(f.get('peak_rss_bytes') or 0) / 1e9:.2f} GB "
      f"(predicted {p['peak_ram_bytes'] / 1e9:.2f}); predicted peak VRAM {vram} GB; {r['message']}")
EOF
  [ -f "$W/$s/config.json" ] || continue
  python3 - "$W/$s" "${EAGER:-1}" > "$R/vllm-$s.log" 2>&1 <<'EOF'
import sys, time
from vllm import LLM, SamplingParams
t = time.time()
llm = LLM(model=sys.argv[1], max_model_len=1024, gpu_memory_utilization=0.4, enforce_eager=sys.argv[2] == "1")
print(f"LOAD_S {time.time() - t:.1f}")
out = llm.generate(["The default value is"], SamplingParams(max_tokens=16, temperature=0))
print("ANSWER", repr(out[0].outputs[0].text), len(out[0].outputs[0].token_ids), "tokens")
EOF
  say "$s in vLLM: exit $?; $(grep -hoE '(Using|Selected) \w*Kernel\w* for \w+' "$R/vllm-$s.log" | sort -u | tr '\n' ';') $(grep -hE '^LOAD_S|^ANSWER|Model loading took' "$R/vllm-$s.log" | tr '\n' ' ')"
done
say "total $((SECONDS - t0)) s"
