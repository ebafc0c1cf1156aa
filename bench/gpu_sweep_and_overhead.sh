#!/usr/bin/env bash
# On the lent GPU (docs/performance.md, issue 6): the overhead benchmark and the concurrency sweep
# on Llama-2-7B shapes with dummy weights (real kernels and memory, random weights, no download).
# Assumes the wheels were installed into /tmp/site (shared/device/README.md).
#   bash bench/gpu_sweep_and_overhead.sh overhead   # bench/overhead.py on the fp16 engine: playground vs openai, sampler on/off
#   bash bench/gpu_sweep_and_overhead.sh sweep      # python -m playground sweep: fp16 vs AWQ at concurrency 1..64
# Results: $OUT/*.json, $OUT/*.err and $OUT/logs.tgz (engine logs).
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
export PLAYGROUND_DATA=${PLAYGROUND_DATA:-/tmp/pgdata}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
what=${1:-overhead}
budget=${CHECK_TIMEOUT:-540}
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv | tee "$OUT/gpu-$what.csv"
python3 -c 'import vllm, torch, httpx; print("vllm", vllm.__version__, "torch", torch.__version__, "httpx", httpx.__version__)' 2>/dev/null | tee "$OUT/versions.txt"
[ -f /tmp/l7b/fp16/config.json ] || python3 bench/make_dummy_llama.py /tmp/l7b assets/tiny/bf16
common="enforce_eager=false,util=0.4,max_model_len=4096,extra_args=--load-format dummy"
A="/tmp/l7b/fp16,quantization=auto,$common"
B="/tmp/l7b/awq,quantization=auto,$common"
if [ "$what" = overhead ]; then
  timeout -s TERM -k 20 "$budget" python3 bench/overhead.py "${ROUNDS:-20}" "${TOKENS:-256}" "$A" \
    > "$OUT/overhead.json" 2> "$OUT/overhead.err"
  echo "overhead exit $?"
else
  timeout -s TERM -k 20 "$budget" python3 -m playground sweep --a "$A" --b "$B" \
    --levels "${LEVELS:-1,2,4,8,16,32,64}" --input-tokens "${IN_TOKENS:-128}" --output-tokens "${OUT_TOKENS:-128}" \
    --json > "$OUT/sweep.json" 2> "$OUT/sweep.err"
  echo "sweep exit $?"
fi
tar czf "$OUT/logs-$what.tgz" -C "$PLAYGROUND_DATA" logs 2>/dev/null
tail -c 3000 "$OUT/$what.json"; tail -n 15 "$OUT/$what.err"
