"""Reading a quantization's progress from its log: the worker's marks and llm-compressor's own bars."""

from __future__ import annotations

from playground.measure.quant_log import read_progress, split_lines

MARK = "[playground quantize]"
W8A8_LOG = (
    f'{MARK} phase {{"phase": "loading", "detail": "loading tiny"}}\n'
    f'{MARK} phase {{"phase": "calibrating", "detail": "4 samples", "samples": 4, "passes": 2}}\n'
    "2026-11-27T14:50:55.5538 | IndependentPipeline | INFO - Inferred `SequentialPipeline` for `SmoothQuantModifier`\n"
    "(1/5): Calibrating:   0%|          | 0/4 [00:00<?, ?it/s]\r(1/5): Calibrating: 100%|##########| 4/4\n"
    "(1/5): Propagating: 100%|##########| 4/4\n"
    "(2/5): Calibrating:  50%|#####     | 2/4\n"
    "2026-11-27T14:50:56.0221 | _apply_smoothing | INFO - Smoothing with model.layers.0.input_layernorm\n"
)


def test_calibration_reads_as_layer_k_of_n_in_its_pass() -> None:
    p = read_progress(split_lines(W8A8_LOG), layers=4)
    assert p.phase == "calibrating"
    assert p.detail == "calibrating layer 1 of 4 (pass 1 of 2)"
    assert p.module == "SmoothQuant model.layers.0.input_layernorm"
    # calibration spans 0.08..0.92; pass 1 of 2, subgraph 2 of 5 a quarter done: (1 + 0.25) / 5 / 2
    assert abs(p.fraction - (0.08 + 0.84 * (1.25 / 5) / 2)) < 1e-9


def test_the_second_pass_and_the_end() -> None:
    log = W8A8_LOG + (
        "(5/5): Propagating: 100%|##########| 4/4\n"
        "2026-11-27 | IndependentPipeline | INFO - Inferred `SequentialPipeline` for `GPTQModifier`\n"
        "(1/5): Calibrating: 100%|##########| 4/4\n"
        "2026-11-27 | compress_module_list | INFO - Quantizing 1 module(s): ['model.layers.0.self_attn.q_proj']\n"
    )
    p = read_progress(split_lines(log), layers=4)
    assert p.detail == "calibrating embeddings (pass 2 of 2)" and p.module == "GPTQ model.layers.0.self_attn.q_proj"
    assert 0.08 + 0.84 * 0.5 < p.fraction < 0.92
    done = read_progress(split_lines(log + f'{MARK} done {{"quantize_s": 1.5}}\n'), layers=4)
    assert (done.phase, done.fraction, done.result) == ("done", 1.0, {"quantize_s": 1.5})


def test_an_error_line_and_an_empty_log() -> None:
    assert read_progress([]).phase == "starting" and read_progress([]).fraction == 0.0
    p = read_progress(["Traceback (most recent call last):", "OSError: [Errno 28] No space left on device"])
    assert p.error == "OSError: [Errno 28] No space left on device"
