#!/usr/bin/env bash
# The GPU check run on the lent H100/H200 (docs/gpu.md): the playground's own CLI starts two real
# vLLM servers on the GPU, compares them, and the figures (NVML per process) land in $OUT.
# Assumes the wheels were installed into /tmp/site (shared/device/README.md).
#   bash bench/gpu_check.sh tiny   # tiny/bf16 vs tiny/awq, fair then simultaneous
#   bash bench/gpu_check.sh l7b    # Llama-2-7B shapes, dummy weights: fp16 vs AWQ (tokenizer: .gpu/tok)
# Everything lands in $OUT/results.tgz (the device tool returns at most 8 files) plus a few small
# summaries beside it. Env: CHECK_TIMEOUT (s, whole compare step), L7B_EAGER, L7B_QUANT, TINY_PROMPT,
# TINY_AUTO (non-empty: a third tiny compare with quantization=auto).
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
export PLAYGROUND_DATA=${PLAYGROUND_DATA:-/tmp/pgdata}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
R=$(mktemp -d /tmp/gpucheck.XXXX)
what=${1:-tiny}
t0=$SECONDS
budget=${CHECK_TIMEOUT:-520}  # seconds for all compares together; the CLI stops its engines on SIGTERM
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv | tee "$R/gpu-before.csv"
python3 -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)' 2>/dev/null | tee "$R/versions.txt"
# What NVML sees per process while the engines run, next to the process tree (psutil's view).
(while true; do
   echo "== $(date +%T) t=$((SECONDS - t0))"
   nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader
   ps -eo pid,ppid,pgid,rss,etimes,args --sort=pid | grep -E "[v]llm|[p]layground" | cut -c1-200
   sleep 15
 done) > "$R/monitor.log" 2>&1 &
mon=$!

compare() {  # compare NAME ARGS...: one CLI run, stopped (SIGTERM) when the budget is spent
  local name=$1; shift
  local left=$((budget - (SECONDS - t0)))
  if [ "$left" -lt "${need:-60}" ]; then echo "$name skipped: ${left}s left" | tee -a "$R/exit-codes.txt"; return; fi
  timeout -s TERM -k 30 "$left" python3 -m playground compare "$@" --json > "$R/$name.json" 2> "$R/$name.err"
  echo "$name exit $? after $((SECONDS - t0)) s" | tee -a "$R/exit-codes.txt"
}

if [ "$what" = tiny ]; then
  # A prompt the tiny model continues: after a finished sentence such as "Return a list of the
  # words in the string." it answers </s> at once (1 token, no decode figure; docs/gpu.md).
  prompt=${TINY_PROMPT:-The default value is}
  for mode in fair simultaneous; do
    compare "tiny-$mode" --a "tiny/bf16,util=0.3,max_model_len=1024" \
      --b "tiny/awq,util=0.3,max_model_len=1024" --prompt "$prompt" \
      --max-tokens 64 --completion --mode "$mode"
  done
  if [ -n "${TINY_AUTO:-}" ]; then  # vLLM choosing the AWQ kernel itself (quantization=auto)
    need=200 compare tiny-auto --a "tiny/bf16,util=0.3,max_model_len=1024" \
      --b "tiny/awq,quantization=auto,util=0.3,max_model_len=1024" \
      --prompt "$prompt" --max-tokens 64 --completion --mode fair
  fi
else
  # Llama-2-7B shapes with random weights (no hub): fp16 against the same shapes under an AWQ config.
  # The tokenizer must be local: .gpu/tok (copied from a tiny tokenizer) when present, else assets/tiny/bf16.
  tok=.gpu/tok; [ -f "$tok/tokenizer.json" ] || tok=assets/tiny/bf16
  python3 bench/make_dummy_llama.py /tmp/l7b "$tok"
  # quantization and enforce_eager are given explicitly: otherwise --a/--b inherit them from the
  # CLI's default (CPU-oriented tiny) pair: quantization=awq and enforce_eager=true.
  eager=${L7B_EAGER:-false}; quant=${L7B_QUANT:-auto}
  compare l7b --a "/tmp/l7b/fp16,quantization=auto,enforce_eager=$eager,util=0.4,max_model_len=4096,extra_args=--load-format dummy" \
    --b "/tmp/l7b/awq,quantization=$quant,enforce_eager=$eager,util=0.4,max_model_len=4096,extra_args=--load-format dummy" \
    --prompt "The quick brown fox" --max-tokens 256 --completion
fi
nvidia-smi --query-gpu=memory.used --format=csv | tee "$R/gpu-after.csv"
sleep 5
nvidia-smi --query-gpu=memory.used --format=csv,noheader | sed 's/^/after+5s: /' | tee -a "$R/gpu-after.csv"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv | tee -a "$R/gpu-after.csv"
kill "$mon" 2>/dev/null
mkdir -p "$R/logs" && cp "$PLAYGROUND_DATA"/logs/*.log "$R/logs/" 2>/dev/null
grep -HE "Model loading took|KV cache size|Available KV cache|Maximum concurrency|awq|marlin|[Kk]ernel|Graph capturing finished|init engine|Loading weights took|torch.compile takes|Error|error" \
  "$R"/logs/*.log | sed "s|$R/logs/||" | cut -c1-400 > "$R/log-highlights.txt"
tar czf "$OUT/results.tgz" -C "$R" .
cp "$R/exit-codes.txt" "$R/log-highlights.txt" "$R/gpu-after.csv" "$OUT/" 2>/dev/null
for f in "$R"/*.json; do cp "$f" "$OUT/"; done 2>/dev/null
true
