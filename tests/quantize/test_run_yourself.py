"""Every engine as code: the `vllm serve` line and `LLM(...)` for a spec, checked with vLLM's own parser."""

from __future__ import annotations

import ast
from dataclasses import replace

from playground.arena.defaults import TINY_BF16
from playground.measure.specs import EngineSpec, server_args
from playground.views.run_yourself import as_markdown, engine_args, llm_kwargs, run_yourself
from tests.quantize.conftest import serve_argv, vllm_engine_args

SPEC = replace(
    TINY_BF16,
    model="/models/tiny bf16",  # a space: the line must quote it
    served_name="tiny/bf16",
    quantization="awq",
    dtype="float16",
    extra_args=("--max-num-seqs", "8", "--seed=3", "--disable-log-stats"),
)


def test_the_playgrounds_own_arguments_are_left_out() -> None:
    args = engine_args(SPEC)
    assert not {"--host", "--port", "--api-key", "--model", "--served-model-name"} & set(args)
    assert "--disable-uvicorn-access-log" not in args
    code = run_yourself(SPEC, {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0"}, cpu=True)
    assert code.vllm_serve == (
        "VLLM_CPU_KVCACHE_SPACE=1 vllm serve '/models/tiny bf16' --quantization awq --dtype float16 "
        "--gpu-memory-utilization 0.25 --max-model-len 512 --enforce-eager "
        "--max-num-seqs 8 --seed=3 --disable-log-stats"
    )
    assert "python -m vllm.entrypoints.openai.api_server --model '/models/tiny bf16'" in code.note
    assert "```bash" in as_markdown(code) and "from vllm import LLM" in as_markdown(code)


def test_llm_python_is_valid_and_has_the_same_settings() -> None:
    code = run_yourself(SPEC, {"VLLM_CPU_KVCACHE_SPACE": "1"})
    tree = ast.parse(code.python)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "LLM")
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert (
        kwargs
        == llm_kwargs(SPEC)
        == {
            "model": "/models/tiny bf16",
            "quantization": "awq",
            "dtype": "float16",
            "gpu_memory_utilization": 0.25,
            "max_model_len": 512,
            "enforce_eager": True,
            "max_num_seqs": 8,
            "seed": 3,
            "disable_log_stats": True,
        }
    )
    assert "os.environ['VLLM_CPU_KVCACHE_SPACE'] = '1'" in code.python


def test_an_attached_endpoint_has_no_command() -> None:
    code = run_yourself(EngineSpec(model="m", endpoint="http://gpu-box:8000"))
    assert code.vllm_serve == "" and "started outside the playground" in code.note


def test_vllms_parser_reads_the_serve_line_as_the_engines_own_arguments() -> None:
    """The line for the user and the arguments the playground starts the engine with parse, in vLLM's
    own parsers, to the same EngineArgs (the model name the API serves is the one difference)."""
    served, launched = vllm_engine_args(
        [("serve", serve_argv(run_yourself(SPEC).vllm_serve)), ("api_server", server_args(SPEC, port=8123))]
    )
    assert launched["served_model_name"] != served["served_model_name"]
    differ = {k for k in served if served[k] != launched[k]} - {"served_model_name"}
    assert differ == set()
    assert (served["quantization"], served["dtype"], served["max_num_seqs"], served["seed"]) == ("awq", "float16", 8, 3)
    assert (served["gpu_memory_utilization"], served["max_model_len"], served["enforce_eager"]) == (0.25, 512, True)


def test_an_engine_pinned_to_gpus_says_which() -> None:
    pinned = replace(EngineSpec(model="/m"), devices=(0, 1))
    line = run_yourself(pinned, {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}).vllm_serve
    assert line.startswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1 vllm serve /m ")
    assert "--tensor-parallel-size 2" in line
