"""Parsing vLLM's /metrics text (the live format is checked against a real server in test_arena.py)."""

from __future__ import annotations

from playground.measure.prometheus import engine_metrics, parse_samples

TEXT = """\
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",kv_cache_memory_bytes="1073741824",\
kv_cache_size_tokens="65536",kv_cache_max_concurrency="128.0",num_gpu_blocks="4096",engine="0"} 1.0
"""


def test_engine_metrics_from_exposition_text() -> None:
    m = engine_metrics(TEXT)
    assert m.kv_cache_usage == 0.25
    assert (m.requests_running, m.requests_waiting) == (2.0, 1.0)
    assert m.kv_cache_bytes == 1073741824 and m.kv_cache_tokens == 65536
    assert m.kv_cache_max_concurrency == 128.0
    assert (m.num_blocks, m.block_size) == (4096, 16)


def test_missing_figures_are_none_not_zero() -> None:
    m = engine_metrics("# nothing here\n")
    assert m.kv_cache_usage is None and m.kv_cache_tokens is None


def test_labels_with_escaped_quotes() -> None:
    (s,) = parse_samples('x{a="say \\"hi\\"",b="2"} 3\n')
    assert s.labels["b"] == "2" and s.value == 3.0
