#!/usr/bin/env bash
# Warm restarts on the lent GPU: two launches of app.py in a row, each in a fresh HOME (a Space's
# container loses ~/.cache on restart), with vLLM's cache root on a kept folder the way the app puts
# it on a persistent volume (use_storage: VLLM_CACHE_ROOT and TRITON_CACHE_DIR). Times each launch to
# both engines ready, cold then warm, and keeps what the engine cards said about the compile cache.
# Engines: Llama-2-7B shapes with dummy weights, fp16 against AWQ, util 0.4 each, CUDA graphs on.
# Assumes the wheels were installed into /tmp/site (shared/device/README.md).
#   bash bench/gpu_warm_restart.sh          # cold, then warm, in one call (each launch has a deadline)
#   bash bench/gpu_warm_restart.sh cold     # or one call each: the kept folder is under /tmp,
#   bash bench/gpu_warm_restart.sh warm     #   which survives between warm calls
# Results: $OUT/warm-restart.tgz (summary.json, app and engine logs, nvidia-smi before and after).
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
PY=${PY:-python3}  # the interpreter (this project's .venv/bin/python for a CPU smoke run)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
KEPT=/tmp/kept-volume  # stands for the persistent volume: only vLLM's and Triton's caches go there
R=$(mktemp -d /tmp/warm.XXXX)
what=${1:-all}
t0=$SECONDS
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1; }
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv > "$R/gpu-before.csv" 2>&1
"$PY" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)' | tee "$R/versions.txt"
if [ -z "${SPEC_A:-}" ]; then  # SPEC_A / SPEC_B: other engines (a CPU smoke run of this script: tiny/bf16, tiny/awq)
  tok=.gpu/tok; [ -f "$tok/tokenizer.json" ] || tok=assets/tiny/bf16
  "$PY" bench/make_dummy_llama.py /tmp/l7b "$tok" > "$R/make.log" 2>&1
  specs="quantization=auto,enforce_eager=false,util=0.4,max_model_len=4096,extra_args=--load-format dummy"
  SPEC_A="/tmp/l7b/fp16,$specs" SPEC_B="/tmp/l7b/awq,$specs"
fi
export PLAYGROUND_A=$SPEC_A PLAYGROUND_B=$SPEC_B

launch() {  # launch NAME DEADLINE_S: app.py in a fresh HOME until both engines are ready, then SIGTERM
  local name=$1 deadline=$2 port=7861
  local home; home=$(mktemp -d /tmp/home.XXXX)
  mkdir -p "$R/$name"
  HOME=$home PLAYGROUND_DATA=$R/$name/data VLLM_CACHE_ROOT=$KEPT/vllm-cache TRITON_CACHE_DIR=$KEPT/vllm-cache/triton \
    PORT=$port setsid "$PY" app.py > "$R/$name/app.log" 2>&1 &
  local app=$!
  "$PY" - "$name" "$deadline" "$port" "$R/$name/ready.json" <<'EOF'
import json, sys, time
from gradio_client import Client
name, deadline, port, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.monotonic()
client, result = None, {"launch": name, "ready_s": None, "cards": []}
while time.monotonic() - start < deadline:
    try:
        client = client or Client(f"http://127.0.0.1:{port}/", verbose=False)
        cards = client.predict(api_name="/refresh")[:2]
    except Exception as exc:  # the app is still starting: keep asking
        result["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
        time.sleep(3)
        continue
    result["cards"] = cards
    if all("● ready" in c or "✕ failed" in c for c in cards):
        result["ready_s"] = round(time.monotonic() - start, 1)
        break
    time.sleep(3)
result["compile_cache"] = ["warm" if "**warm**" in c else "cold" if "**cold**" in c else None for c in result["cards"]]
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: result[k] for k in ("launch", "ready_s", "compile_cache")}))
EOF
  kill -TERM -- -"$app" 2>/dev/null  # app.py stops its engines on SIGTERM
  for _ in $(seq 60); do kill -0 "$app" 2>/dev/null || break; sleep 1; done
  kill -KILL -- -"$app" 2>/dev/null
  for _ in $(seq 30); do [ "$(gpu_used || echo 0)" -lt 2000 ] 2>/dev/null && break; sleep 2; done
  cp "$R/$name"/data/logs/engine-*.log "$R/$name/" 2>/dev/null
  gpu_used > "$R/$name/gpu-after-mib.txt"
  rm -rf "$home"
  echo "$name done after $((SECONDS - t0)) s" | tee -a "$R/steps.txt"
}

case $what in
  cold) rm -rf "$KEPT"; launch cold 480 ;;
  warm) launch warm 480 ;;
  *) rm -rf "$KEPT"; launch cold 330; launch warm $((500 - (SECONDS - t0))) ;;
esac
du -sh "$KEPT"/vllm-cache/* > "$R/kept-cache-size.txt" 2>&1
"$PY" - "$R" <<'EOF' | tee "$R/summary.json"
import json, pathlib, sys
runs = {p.parent.name: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*/ready.json")}
out = {k: {"ready_s": v["ready_s"], "compile_cache": v["compile_cache"]} for k, v in runs.items()}
if runs.get("cold", {}).get("ready_s") and runs.get("warm", {}).get("ready_s"):
    out["warm_over_cold"] = round(runs["warm"]["ready_s"] / runs["cold"]["ready_s"], 3)
print(json.dumps(out, indent=2))
EOF
tar czf "$OUT/warm-restart-$what.tgz" -C "$R" .
cp "$R/summary.json" "$OUT/summary-$what.json"
