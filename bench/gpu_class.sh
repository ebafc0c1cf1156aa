#!/usr/bin/env bash
# A class on one GPU (docs/performance.md, section 7): two Llama-2-7B-shaped engines (fp16 and AWQ,
# dummy weights, util 0.4 each, CUDA graphs) and 40 visitors x 2 compares of 256 tokens with their
# pages polling, through app.py before and after the change. Assumes the wheels in /tmp/site
# (shared/device/README.md). Three calls, each well inside the device's 10-minute limit:
#   bash bench/gpu_class.sh start    # both engines, kept running (setsid) for the next calls
#   bash bench/gpu_class.sh before   # the app of .gpu/before (the commit before the change)
#   bash bench/gpu_class.sh after    # this checkout's app; then the engines stop; $OUT/class.tgz
# The vocabulary is the tiny tokenizer's 2,048 (not Llama-2's 32,000), so that random weights' tokens
# decode to visible text and the visitors' first visible token can be timed.
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
R=/tmp/class-results; mkdir -p "$R"
what=${1:?start, before or after}
visitors=${VISITORS:-40}; compares=${COMPARES:-2}; tokens=${MAX_TOKENS:-256}
case "$what" in
start)
  nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv | tee "$R/gpu-before.csv"
  python3 bench/make_dummy_llama.py /tmp/l7b assets/tiny/bf16 --vocab 2048
  common="enforce_eager=false,util=0.4,max_model_len=4096,extra_args=--load-format dummy"
  rm -f /tmp/pair.json
  t0=$SECONDS
  setsid nohup python3 bench/serve_pair.py --a "/tmp/l7b/fp16,quantization=auto,$common" \
    --b "/tmp/l7b/awq,quantization=auto,$common" --out /tmp/pair.json > "$R/pair.log" 2>&1 < /dev/null &
  while [ ! -s /tmp/pair.json ] && [ $((SECONDS - t0)) -lt "${START_WAIT:-540}" ]; do sleep 5; done
  echo "engines ready after $((SECONDS - t0)) s: $(cat /tmp/pair.json 2>/dev/null || echo none)" | tee -a "$R/times.txt"
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv | tee "$R/gpu-engines.csv"
  tail -5 "$R/pair.log"
  ;;
before | after)
  [ -s /tmp/pair.json ] || { echo "no engines: run 'start' first"; exit 1; }
  read -r ua ka ub kb < <(python3 -c 'import json; p = json.load(open("/tmp/pair.json")); print(p["A"]["url"], p["A"]["key"], p["B"]["url"], p["B"]["key"])')
  dir=$PWD; [ "$what" = before ] && dir=$PWD/.gpu/before
  t0=$SECONDS
  timeout -k 20 "${RUN_TIMEOUT:-520}" python3 bench/class_load.py --engine-a "$ua" --key-a "$ka" --engine-b "$ub" --key-b "$kb" \
    --app-dir "$dir" --visitors "$visitors" --compares "$compares" --max-tokens "$tokens" \
    --idle-pages "${IDLE_PAGES:-100}" --idle-s "${IDLE_S:-20}" --timeout-s "${COMPARE_TIMEOUT:-240}" --json \
    > "$R/$what.json" 2> "$R/$what.err"
  echo "$what exit $? after $((SECONDS - t0)) s" | tee -a "$R/times.txt"
  cat "$R/$what.json"
  tail -3 "$R/$what.err"
  if [ "$what" = after ] && [ -z "${KEEP_ENGINES:-}" ]; then
    pkill -TERM -f bench/serve_pair.py; sleep 15
    nvidia-smi --query-gpu=memory.used --format=csv | tee "$R/gpu-after.csv"
  fi
  tar -czf "$OUT/class.tgz" -C /tmp class-results
  ;;
*) echo "usage: $0 start|before|after" >&2; exit 2 ;;
esac
