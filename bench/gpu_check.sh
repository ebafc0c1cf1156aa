#!/usr/bin/env bash
# The GPU check run on the lent H100/H200 (docs/gpu.md): the playground's own CLI starts two real
# vLLM servers on the GPU, compares them, and the figures (NVML per process) land in $OUT.
# Assumes the wheels were installed into /tmp/site (shared/device/README.md).
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
export PLAYGROUND_DATA=${PLAYGROUND_DATA:-/tmp/pgdata}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
what=${1:-tiny}
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv | tee "$OUT/gpu-before.csv"
python3 -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)' | tee "$OUT/versions.txt"
if [ "$what" = tiny ]; then
  for mode in fair simultaneous; do
    python3 -m playground compare --a "tiny/bf16,util=0.3,max_model_len=1024" \
      --b "tiny/awq,util=0.3,max_model_len=1024" --prompt "Return a list of the words in the string." \
      --max-tokens 64 --completion --mode "$mode" --json > "$OUT/tiny-$mode.json" 2> "$OUT/tiny-$mode.err"
    echo "tiny $mode exit $?"
  done
else
  # Llama-2-7B shapes with random weights (no hub): fp16 against the same shapes under an AWQ config.
  python3 bench/make_dummy_llama.py /tmp/l7b
  python3 -m playground compare --a "/tmp/l7b/fp16,util=0.4,max_model_len=4096,extra_args=--load-format dummy" \
    --b "/tmp/l7b/awq,util=0.4,max_model_len=4096,extra_args=--load-format dummy" \
    --prompt "The quick brown fox" --max-tokens 256 --completion --json > "$OUT/l7b.json" 2> "$OUT/l7b.err"
  echo "l7b exit $?"
fi
nvidia-smi --query-gpu=memory.used --format=csv | tee "$OUT/gpu-after.csv"
mkdir -p "$OUT/logs" && cp "$PLAYGROUND_DATA"/logs/*.log "$OUT/logs/" 2>/dev/null
grep -h "Model loading took\|KV cache size\|awq_marlin\|Using .* kernel\|Graph capturing finished\|quantization=" \
  "$PLAYGROUND_DATA"/logs/*.log | cut -c1-300 > "$OUT/log-highlights.txt"
true
