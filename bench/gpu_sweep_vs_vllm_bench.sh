#!/usr/bin/env bash
# On the lent GPU (docs/performance.md, issue 13): the playground's sweep against `vllm bench serve` on
# the same engine, level by level (bench/sweep_vs_vllm_bench.py), for Llama-2-7B shapes with dummy
# weights; one engine per call so that each call stays well inside the 9-minute limit.
# Assumes the wheels were installed into /tmp/site (../shared/device/README.md).
#   bash bench/gpu_sweep_vs_vllm_bench.sh fp16      # fp16 engine: sweep and vllm bench at 1,8,32,64,128,256
#   bash bench/gpu_sweep_vs_vllm_bench.sh awq       # the same for the AWQ 4-bit engine
#   bash bench/gpu_sweep_vs_vllm_bench.sh ceiling   # bench/generator_ceiling.py on this host's CPU (no GPU, ~1 min)
# Env: LEVELS (default 1,8,32,64,128,256), REPEATS (5 runs per client per level: TTFT p50 moves by up to a
# third from run to run; docs/performance.md section 6), IN_TOKENS /
# OUT_TOKENS (128), CHECK_TIMEOUT (s for the whole comparison, default 480), UTIL (0.4), SPEC (another
# engine spec, for a dry run elsewhere). Needs pandas beside vLLM (vllm bench's custom dataset):
# ../shared/device/pack-wheels pandas==3.1.1 python-dateutil six.
# Everything lands in $OUT/sweep-vs-vllm-bench-<what>.tgz (comparison.json, the table, vllm bench's result
# files, prompts and log, /metrics snapshots and samples, the engine log) plus the table and a summary beside it.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PLAYGROUND_OFFLINE=1
export PLAYGROUND_DATA=${PLAYGROUND_DATA:-/tmp/pgdata}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
what=${1:-fp16}
budget=${CHECK_TIMEOUT:-480}
R=$(mktemp -d "/tmp/sweep-vs-vllm-bench-$what.XXXX")
t0=$SECONDS

finish() {  # on any exit: no engine left behind, and whatever was measured goes back in $OUT
  local rc=$?
  if [ -f "$R/run/engine-pgid.txt" ]; then
    pg=$(cat "$R/run/engine-pgid.txt")
    if kill -0 "$pg" 2>/dev/null; then kill -TERM -- "-$pg" 2>/dev/null || true; sleep 5; kill -KILL -- "-$pg" 2>/dev/null || true; fi
  fi
  mkdir -p "$R/logs"; cp "$PLAYGROUND_DATA"/logs/*.log "$R/logs/" 2>/dev/null || true
  nvidia-smi --query-gpu=memory.used --format=csv,noheader > "$R/gpu-after.txt" 2>/dev/null || true
  echo "exit $rc after $((SECONDS - t0)) s" >> "$R/exit.txt"
  tar czf "$OUT/sweep-vs-vllm-bench-$what.tgz" -C "$R" . 2>/dev/null || true
  cp "$R/exit.txt" "$OUT/sweep-vs-vllm-bench-$what-exit.txt" 2>/dev/null || true
  [ -f "$R/table.md" ] && cp "$R/table.md" "$OUT/sweep-vs-vllm-bench-$what-table.md"
  exit "$rc"
}
trap finish EXIT

{ nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv || true; } | tee "$R/gpu.csv"
python3 -c 'import vllm, torch, httpx; print("vllm", vllm.__version__, "torch", torch.__version__, "httpx", httpx.__version__)' \
  2>/dev/null | tee "$R/versions.txt" || true
nproc > "$R/nproc.txt"; lscpu 2>/dev/null | grep -E "Model name|^CPU\(s\)" >> "$R/nproc.txt" || true

case "$what" in
  ceiling)
    timeout -s TERM -k 10 "${CHECK_TIMEOUT:-300}" python3 bench/generator_ceiling.py --repeats "${REPEATS:-3}" \
      > "$R/ceiling.json" 2> "$R/ceiling.err" || echo "ceiling exit $?" | tee -a "$R/exit.txt"
    tail -n 8 "$R/ceiling.err" | tee "$R/table.md"
    exit 0 ;;
  fp16|awq) ;;
  *) echo "usage: bash bench/gpu_sweep_vs_vllm_bench.sh fp16|awq|ceiling" >&2; exit 2 ;;
esac

[ -f /tmp/l7b/fp16/config.json ] || python3 bench/make_dummy_llama.py /tmp/l7b assets/tiny/bf16
spec="/tmp/l7b/$what,quantization=auto,enforce_eager=false,util=${UTIL:-0.4},max_model_len=4096,extra_args=--load-format dummy"
tok=(--tokenizer "/tmp/l7b/$what")
if [ -n "${SPEC:-}" ]; then spec=$SPEC; tok=(); fi  # a dry run elsewhere, e.g. SPEC=tiny/bf16 on the CPU
# The engine starts inside the script (the playground's own way); SIGTERM at the budget makes it
# stop the engine and keep the levels measured so far in comparison.json.
rc=0
timeout -s TERM -k 30 "$budget" python3 bench/sweep_vs_vllm_bench.py --spec "$spec" \
  --levels "${LEVELS:-1,8,32,64,128,256}" --repeats "${REPEATS:-5}" --input-tokens "${IN_TOKENS:-128}" --output-tokens "${OUT_TOKENS:-128}" \
  "${tok[@]}" --out "$R/run" > "$R/table.md" 2> "$R/run.err" || rc=$?
echo "comparison exit $rc after $((SECONDS - t0)) s" | tee -a "$R/exit.txt"
cat "$R/table.md"; tail -n 12 "$R/run.err"
[ -f "$R/run/comparison.json" ] && python3 - "$R/run/comparison.json" <<'PY' | tee "$R/summary.txt" || true
import json, sys
r = json.load(open(sys.argv[1]))
for lv in r["levels"]:
    for who in ("sweep", "bench"):
        for i, run in enumerate(lv["runs"][who]):
            e = run.get("vllm", {})
            eng, pk = e.get("engine", {}), e.get("peaks", {})
            print(f"c{lv['concurrency']:>4} {who:5} run {i + 1}: {run.get('output_tok_s') or 0:,.0f} tok/s, TTFT p50 "
                  f"{run.get('ttft_p50_ms') or 0:.1f} ms, burst {run.get('first_wave_spread_ms') or 0:.1f} ms | "
                  f"running max {pk.get('running')} waiting max {pk.get('waiting')} KV peak {pk.get('kv')} | vLLM: "
                  f"TTFT mean {eng.get('server_ttft_mean_ms')} ms, queue {eng.get('queue_time_mean_ms')} ms, "
                  f"tokens/step {eng.get('tokens_per_step_mean')}, preemptions {eng.get('preemptions')}, "
                  f"prefix hits {eng.get('prefix_cache_hits')} {run.get('error', '')}")
for line in r.get("engine_log_highlights", [])[:12]:
    print(line[:300])
PY
exit "$rc"
