"""Bad inputs and faults against the real things: the app through its HTTP API (gradio_client and raw
requests), the core, the CLI and app.py as processes, and real vLLM engines. docs/bad-inputs.md is
the table of what each one gets; every row there names its test here or in an older test file.

Tests marked `engine` use the session's two tiny vLLM CPU engines or start (and watch fail) engines
of their own; the others start no vLLM engine (what they send is refused before it reaches one)."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from playground.arena import Arena
from playground.engines import EngineError
from playground.generation import GenerationParams, check_generation
from playground.phases import explain_exit, read_log
from playground.settings import AppSettings
from playground.specs import EngineSpec, SpecError, check_spec
from playground.tiny.build import MARKER, is_complete, source_hash
from playground.ui import build_ui
from tests.conftest import DEVICE, SPEC_A, SPEC_B, alive

ROOT = Path(__file__).resolve().parent.parent
LOCKED = AppSettings(locked=True, max_prompt_chars=200, max_tokens=32, requests_per_minute=3)
# A 512-token engine (tiny), greedy, a handful of tokens: cheap on two shared CPU cores.
FEW = GenerationParams(max_tokens=6, temperature=0.0, chat=False)


# -- helpers ------------------------------------------------------------------------------------------
def launch(arena: Arena, settings: AppSettings | None = None) -> gr.Blocks:
    demo = build_ui(arena, settings)
    demo.queue().launch(prevent_thread_lock=True, server_port=None, quiet=True)
    return demo


def compare(client: Client, prompt: str, **changes: Any) -> tuple[str, str, str, str, str]:
    """The Compare button through the API: (answer A, answer B, figures A, figures B, message)."""
    form = {"mode": "fair", "chat": False, "temperature": 0.0, "top_p": 1.0, "max_tokens": 6, "seed": 0, **changes}
    out = client.predict(prompt, *form.values(), api_name="/compare")
    return tuple(out)  # type: ignore[return-value]


def raw_call(url: str, api: str, data: list[Any]) -> tuple[str, Any]:
    """POST /gradio_api/call/<api> with a body gradio_client would not send (json.dumps writes NaN and
    \\udcff escapes); returns the last SSE event and its data, or ("HTTP <code>", text)."""
    body = json.dumps({"data": data}).encode("ascii")
    posted = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
    if posted.status_code != 200:
        return f"HTTP {posted.status_code}", posted.text
    stream = httpx.get(f"{url}gradio_api/call/{api}/{posted.json()['event_id']}", timeout=120).text
    events = [block.split("\n") for block in stream.strip().split("\n\n")]
    event, data_line = events[-1][0], events[-1][1]
    return event.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))


def queue_join(url: str, fn_index: int, data: list[Any], session: str) -> tuple[int, dict[str, Any]]:
    """Call an event by its index, as the browser does (POST /gradio_api/queue/join); private events
    have an index too. Returns the HTTP status of the join and the completed message."""
    joined = httpx.post(
        f"{url}gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
    )
    if joined.status_code != 200:
        return joined.status_code, {}
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("data:") and '"process_completed"' in line:
                return 200, json.loads(line[5:])
    raise AssertionError("the queue stream ended without a completed event")


def run(cmd: list[str | bytes], *, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600, **kw)


def cli(*args: str | bytes, data: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "playground", *args], env={"PLAYGROUND_DATA": str(data)}, **kw)


def failed_start(spec: EngineSpec, data: Path, timeout_s: float = 600) -> tuple[str, float, list[int]]:
    """Start `spec` in slot A of a fresh arena and expect it to fail: (message, seconds, pids seen)."""
    arena = Arena((spec, spec), data_dir=data, device=DEVICE)
    seen: list[int] = []

    def watch(_: object) -> None:
        if engine := arena.slot("A").engine:
            seen.extend(p for p in engine.pids() if p not in seen)

    started = time.monotonic()
    try:
        with pytest.raises((EngineError, SpecError)) as failure:
            arena.start("A", timeout_s=timeout_s, on_progress=watch)
        assert arena.status("A").state == "failed" and arena.status("A").message == str(failure.value)
    finally:
        arena.shutdown()
    return str(failure.value), time.monotonic() - started, seen


def attached(arena: Arena, **changes: Any) -> list[EngineSpec]:
    """Specs that attach to the session's two engines (nothing new starts)."""
    engines = [arena.slot(n).engine for n in ("A", "B")]
    specs = [EngineSpec(model="unused", endpoint=e.base_url, api_key=e.api_key) for e in engines if e]
    return [replace(s, **changes) for s in specs]


# -- apps over arenas whose engines never start: every input here is refused before anything is sent --
@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Arena]]:
    """The open app over a tiny pair that is not started."""
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path_factory.mktemp("idle"), device=DEVICE)
    demo = launch(arena)
    try:
        yield demo.local_url, arena
    finally:
        demo.close()
        arena.shutdown()


@pytest.fixture(scope="module")
def locked_idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[gr.Blocks, Arena]]:
    """A locked (public) app, engines not started."""
    data = tmp_path_factory.mktemp("locked-idle")
    arena = Arena((SPEC_A, SPEC_B), data_dir=data, device=DEVICE, limits=LOCKED.limits)
    demo = launch(arena, LOCKED)
    try:
        yield demo, arena
    finally:
        demo.close()
        arena.shutdown()


def test_megabyte_prompt_through_the_ui(idle: tuple[str, Arena]) -> None:
    url, arena = idle
    started = time.monotonic()
    *_, message = compare(Client(url, verbose=False), "x" * 1_000_000)
    assert message == "✕ the prompt has 1,000,000 characters; the limit here is 32,000"
    assert time.monotonic() - started < 60 and arena.history == []


def test_non_utf8_prompt_through_the_api(idle: tuple[str, Arena]) -> None:
    url, arena = idle
    # gradio_client cannot even send a lone surrogate: it encodes its request as UTF-8
    with pytest.raises(UnicodeEncodeError):
        compare(Client(url, verbose=False), "\udcff hi")
    # a raw request can (JSON's \udcff escape); the app refuses it before any engine sees it
    event, data = raw_call(url, "compare", ["\udcff hi", "fair", False, 0.0, 1.0, 8, 0])
    assert event == "complete"
    assert data[4].startswith("✕ the prompt is not valid text: character 1 is U+DCFF, a lone surrogate")
    assert arena.history == [] and arena.saved_runs() == []


def test_non_finite_numbers_through_the_api(idle: tuple[str, Arena]) -> None:
    url, _ = idle
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        compare(Client(url, verbose=False), "hi", temperature=float("nan"))  # gradio_client refuses NaN
    # Gradio's server reads NaN and Infinity in raw JSON; the slider's bounds do not catch NaN, the core does
    event, data = raw_call(url, "compare", ["hi", "fair", False, float("nan"), 1.0, 8, 0])
    assert (event, data[4]) == ("complete", "✕ temperature must be between 0 and 2 (got nan)")
    event, data = raw_call(url, "compare", ["hi", "fair", False, 0.0, float("nan"), 8, 0])
    assert (event, data[4]) == ("complete", "✕ top_p must be above 0 and at most 1 (got nan)")
    # an infinite max_tokens stops in Gradio's Number component: an error event without details
    event, data = raw_call(url, "compare", ["hi", "fair", False, 0.0, 1.0, float("inf"), 0])
    assert (event, data) == ("error", {"error": None})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_tokens": -5}, "✕ max_tokens must be at least 1 (got -5)"),
        (
            {"max_tokens": 10**9},
            "✕ max_tokens 1000000000 does not fit the engine's context of 512 tokens (prompt included): lower it",
        ),
        ({"temperature": 5.0}, "Value 5.0 is greater than maximum value 2."),  # Gradio's slider bounds
        ({"top_p": 0.0}, "Value 0.0 is less than minimum value 0.05."),
        (
            {"mode": "fast"},
            "Value: 'fast' (type: <class 'str'>) is not in the list of choices: ['fair', 'simultaneous']",
        ),
    ],
)
def test_out_of_range_settings_through_the_ui(idle: tuple[str, Arena], changes: dict[str, Any], message: str) -> None:
    url, arena = idle
    try:
        *_, shown = compare(Client(url, verbose=False), "The value", **changes)
    except AppError as exc:  # Gradio's own component checks run before the app's
        shown = str(exc)
    assert shown == message
    assert arena.history == []


def test_core_refuses_what_the_ui_cannot_send(tmp_path: Path) -> None:
    """NaN, inf, top_p 0, an unknown mode and lone surrogates at the core, where the CLI and scripts call it."""
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    try:
        cases = [
            ("hi", GenerationParams(temperature=float("nan")), "fair", "temperature must be between 0 and 2 (got nan)"),
            ("hi", GenerationParams(temperature=float("inf")), "fair", "temperature must be between 0 and 2 (got inf)"),
            ("hi", GenerationParams(top_p=0.0), "fair", "top_p must be above 0 and at most 1 (got 0.0)"),
            ("hi", GenerationParams(), "fast", "mode must be one of fair, simultaneous (got 'fast')"),
            ("ok \ud800", GenerationParams(), "fair", "character 4 is U+D800, a lone surrogate"),
        ]
        for prompt, params, mode, message in cases:
            with pytest.raises(SpecError, match=re.escape(message)):
                list(arena.compare(prompt, params, mode))
        assert arena.history == []
    finally:
        arena.shutdown()
    assert check_generation("emoji 🤖, é, 中文", GenerationParams()) == [], "real Unicode is fine"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (["../../../../etc/passwd"], "B: model path ../../../../etc/passwd is a file: give the folder that holds"),
        ([""], "B: model is empty: give a Hugging Face id or a local path"),
        (["tiny/bf16", "fp8"], "B: quantization fp8 does not run on vLLM's CPU build"),
        (["tiny/bf16", "auto", "auto", 0.99], "Value 0.99 is greater than maximum value 0.95."),  # the slider
        (["tiny/bf16", "auto", "auto", 0.25, 4], "B: max_model_len 4 is too small (at least 16)"),
        (["tiny/bf16", "auto", "auto", 0.25, 512, "fp8"], "B: kv_cache_dtype fp8 needs a GPU; use auto on the CPU"),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 2],
            "B: tensor_parallel_size 2 needs that many GPUs; this machine has 0",
        ),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "--api-key mine --port=80"],
            "B: extra arguments --api-key, --port are set by the playground itself; remove them",
        ),
        (["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "--seed '1"], "extra engine arguments: No closing"),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "file:///etc/passwd"],
            "B: endpoint 'file:///etc/passwd' must start with http:// or https://",
        ),
    ],
)
def test_engine_form_refused_before_launch(idle: tuple[str, Arena], form: list[Any], message: str) -> None:
    url, arena = idle
    defaults = ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "", ""]
    try:
        card = Client(url, verbose=False).predict(*form, *defaults[len(form) :], api_name="/start_b")
        assert f"✕ **Not started:** {message}" in card
    except AppError as exc:  # Gradio's own component checks run before the app's
        assert str(exc) == message
    assert arena.slot("B").engine is None, "nothing was launched"


def test_path_traversal_in_the_tiny_alias(tmp_path: Path) -> None:
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    try:
        for model in ("tiny/../../etc", "tiny/../bf16", "tiny/"):
            with pytest.raises(SpecError, match="unknown tiny model .*; choose one of: tiny/awq, tiny/bf16, tiny/gptq"):
                arena.start("A", replace(SPEC_A, model=model))
            assert arena.slot("A").engine is None
    finally:
        arena.shutdown()
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == [MARKER, "awq", "bf16", "gptq"]


def test_model_path_checks() -> None:
    for passwd in ("/etc/passwd", "~/../../etc/passwd"):
        (message,) = check_spec(EngineSpec(model=passwd), DEVICE)
        assert message == f"model path {passwd} is a file: give the folder that holds config.json"
    assert check_spec(EngineSpec(model="/etc"), DEVICE) == [], "a folder is left to vLLM (it names what is missing)"


def test_endpoint_that_never_answers(tmp_path: Path) -> None:
    """An attached endpoint that accepts connections and never replies (a local socket nobody serves)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        spec = EngineSpec(model="m", endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}")
        message, seconds, _ = failed_start(spec, tmp_path, timeout_s=3)
    assert message == f"{spec.endpoint} did not answer /health within 3 s"
    assert seconds < 30


@pytest.mark.parametrize(
    ("run_id", "fmt", "message"),
    [
        (1, "xml", "Value: 'xml' (type: <class 'str'>) is not in the list of choices"),
        (-1, "json", "Value -1 is less than minimum value 0."),
        (424242, "json", "✕ no saved run #424242"),
    ],
)
def test_export_of_what_does_not_exist(idle: tuple[str, Arena], run_id: int, fmt: str, message: str) -> None:
    url, arena = idle
    try:
        _, shown = Client(url, verbose=False).predict(run_id, fmt, api_name="/export")
    except AppError as exc:
        shown = str(exc)
    assert shown.startswith(message)
    with pytest.raises(ValueError, match="export format must be one of json, csv, html"):
        arena.export("xml")


# -- locked mode: what a script can try against a public instance ----------------------------------------
def test_locked_hidden_events_cannot_be_reached(locked_idle: tuple[gr.Blocks, Arena]) -> None:
    demo, arena = locked_idle
    url = demo.local_url
    # the start/stop events do not exist: no api name, no index
    for api in ("start_a", "start_b", "stop_a", "stop_b"):
        assert raw_call(url, api, ["tiny/bf16"]) == ("HTTP 500", "Internal Server Error")
    deps = demo.config["dependencies"]
    assert queue_join(url, len(deps), ["tiny/bf16"], "script-1")[0] == 500
    index = {d["api_name"]: i for i, d in enumerate(deps)}
    # the private events (Enter in the prompt box, the planner's other inputs) check what the public ones do
    _, done = queue_join(url, index["compare_1"], ["The value", "fair", False, 0.0, 1.0, 33, 0], "script-2")
    assert done["output"]["data"][4] == "✕ max_tokens 33 is over this instance's limit of 32"
    _, done = queue_join(url, index["compare_1"], ["y" * 201, "fair", False, 0.0, 1.0, 8, 0], "script-3")
    assert done["output"]["data"][4] == "✕ the prompt has 201 characters; the limit here is 200"
    for private in ("run", "run_1", "run_2"):
        _, done = queue_join(url, index[private], ["/etc", "H100-80GB", 4096, 0.9], "script-4")
        assert done["success"] is False and done["output"]["error"].startswith("Value: /etc is not in the list")
    assert arena.slot("A").engine is None and arena.slot("B").engine is None


# -- CLI and app.py as processes -------------------------------------------------------------------------
def test_cli_prompt_limits(tmp_path: Path) -> None:
    # Linux caps one argument at 128 KiB: a 1 MB prompt never reaches the CLI
    with pytest.raises(OSError) as refused:
        cli("compare", "--prompt", "x" * 1_000_000, data=tmp_path)
    assert refused.value.errno == errno.E2BIG
    out = cli("compare", "--prompt", "x" * 100_000, data=tmp_path)
    assert out.returncode == 2
    assert "error: the prompt has 100,000 characters; the limit here is 32,000\n" in out.stderr


def test_cli_non_utf8_bytes_and_bad_numbers(tmp_path: Path) -> None:
    out = cli("compare", "--prompt", b"caf\xe9", data=tmp_path)  # Latin-1 bytes: argv decodes them to U+DCE9
    assert out.returncode == 2
    assert "error: the prompt is not valid text: character 4 is U+DCE9, a lone surrogate" in out.stderr
    out = cli("compare", "--prompt", "hi", "--max-tokens", "-5", "--temperature", "nan", "--top-p", "0", data=tmp_path)
    assert out.returncode == 2
    assert (
        "error: max_tokens must be at least 1 (got -5); temperature must be between 0 and 2 (got nan); "
        "top_p must be above 0 and at most 1 (got 0.0)\n"
    ) in out.stderr
    out = cli("compare", "--prompt", "hi", "--mode", "fast", data=tmp_path)
    assert out.returncode == 2 and "argument --mode: invalid choice: 'fast'" in out.stderr


@pytest.mark.parametrize("case", ["bad number", "bad engine spec", "corrupt history", "unwritable data folder"])
def test_app_start_with_bad_settings(case: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {"PLAYGROUND_DATA": str(data), "PLAYGROUND_AUTOSTART": "0", "PORT": "0"}
    cmd = [sys.executable, "app.py"]
    if case == "bad number":
        env["PLAYGROUND_MAX_TOKENS"] = "lots"
        expected = "error: PLAYGROUND_MAX_TOKENS must be a whole number (got 'lots')"
    elif case == "bad engine spec":
        env["PLAYGROUND_B"] = "tiny/awq,quantisation=awq"
        expected = "error: unknown engine setting 'quantisation'; known: "
    elif case == "corrupt history":
        (data / "history.sqlite").write_bytes(os.urandom(8192))
        expected = f"error: {data / 'history.sqlite'} is not a history file SQLite can read (file is not a database)"
    else:
        if os.geteuid() != 0:
            data.chmod(0o555)
        elif can_mount_tmpfs():  # root writes past permissions: a read-only file system instead
            cmd = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(data), *cmd]
        else:
            pytest.skip("root without `unshare -m` + mount: no folder here is unwritable to it")
        expected = f"error: cannot open the history file {data / 'history.sqlite'}: unable to open database file"
    out = run(cmd, env=env)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.startswith(expected), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_cli_corrupt_history(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite").write_text("not a database, just text\n" * 200)
    out = cli("compare", "--prompt", "hi", data=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {tmp_path / 'history.sqlite'} is not a history file SQLite can read")


# -- disk full while building the tiny model ---------------------------------------------------------------
def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True)
    return probe.returncode == 0


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))


@pytest.mark.parametrize("full", ["file size limit (EFBIG)", "12 MB tmpfs (ENOSPC)"])
def test_disk_full_while_building_the_tiny_model(full: str, tmp_path: Path) -> None:
    """Simulated two ways: RLIMIT_FSIZE of 1 MB on the build process (every write past 1 MB fails with
    EFBIG), or the build writing to a 12 MB tmpfs in its own mount namespace (the checkpoints need
    about 19 MB: the GPTQ write fails with ENOSPC)."""
    out_dir = tmp_path / "tiny"
    build = [sys.executable, "-m", "playground", "tiny", "--out", str(out_dir)]
    if full.startswith("file size"):
        out = run(build, preexec_fn=_small_file_limit)
        reason = "[Errno 27] File too large"
    else:
        if not can_mount_tmpfs():
            pytest.skip("this machine does not allow `unshare -m` + mount (no CAP_SYS_ADMIN)")
        script = 'mount -t tmpfs -o size=12m tmpfs "$0" && "$@"; code=$?; ls -A "$0"; exit $code'
        out = run(["unshare", "-m", "sh", "-c", script, str(tmp_path), *build])
        reason = "No space left on device"
        assert out.stdout.split() == [".tiny.lock"], "only the lock file is left on the full disk"
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: could not build the tiny model in {out_dir}: "), out.stderr
    assert reason in out.stderr.splitlines()[0]
    assert "Traceback" not in out.stderr
    if full.startswith("file size"):
        assert [p.name for p in tmp_path.iterdir()] == [".tiny.lock"], "no staging folder, no half-built model"
    # with room again, the next build is complete; nothing half-built was picked up
    assert cli("tiny", "--out", str(out_dir), data=tmp_path).returncode == 0
    assert is_complete(out_dir, source_hash(ROOT / "assets/tiny/bf16"))


def test_cli_compare_when_the_tiny_model_cannot_be_built(tmp_path: Path) -> None:
    out = run(
        [sys.executable, "-m", "playground", "compare", "--prompt", "hi", "--max-tokens", "4"],
        env={"PLAYGROUND_DATA": str(tmp_path)},
        preexec_fn=_small_file_limit,
    )
    assert out.returncode == 1
    assert f"error: engine A: could not build the tiny model in {tmp_path / 'tiny'}: [Errno 27]" in out.stderr
    assert "error: engine A: engine A is not ready (could not build the tiny model" in out.stderr
    assert "Traceback" not in out.stderr


# -- real engines ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_app(arena: Arena) -> Iterator[str]:
    """The open app over the session's two engines."""
    demo = launch(arena)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.mark.engine
def test_over_committed_memory_refused_next_to_a_running_engine(open_app: str, arena: Arena) -> None:
    form = ["tiny/bf16", "auto", "auto", 0.9, 512, "auto", True, 1, "", "", ""]
    card = Client(open_app, verbose=False).predict(*form, api_name="/start_b")
    assert "✕ **Not started:** the two engines share one device: gpu_memory_utilization 0.25 + 0.9 = 1.15" in card
    assert arena.status("B").state == "ready", "B was left running"


@pytest.mark.engine
def test_nul_character_in_the_prompt(open_app: str, arena: Arena) -> None:
    text_a, text_b, _, _, message = compare(Client(open_app, verbose=False), "The\x00 value")
    assert text_a and text_b and message == "", "vLLM tokenizes NUL like any character"
    run = arena.saved_runs(limit=1)[0]
    assert run.prompt == "The\x00 value" and [a.error for a in run.answers] == ["", ""]
    assert "The\\u0000 value" in arena.export("json", run_id=run.id).read_text()
    for fmt in ("csv", "html"):
        assert "The\x00 value" in arena.export(fmt, run_id=run.id).read_text()


@pytest.mark.engine
def test_seed_out_of_range_is_the_engines_answer(open_app: str) -> None:
    *_, message = compare(Client(open_app, verbose=False), "The value", seed=2**63)
    assert message.startswith("✕ **A:** the engine refused the request (HTTP 400): 1 validation error")
    assert "Input should be less than or equal to 9223372036854775807" in message and "**B:**" in message


@pytest.mark.engine
def test_huge_max_tokens_where_the_context_is_unknown(arena: Arena, tmp_path: Path) -> None:
    """Attached without max_model_len the app cannot check; vLLM refuses max_tokens over its context."""
    core = Arena(attached(arena, max_model_len=None), data_dir=tmp_path, device=DEVICE)
    try:
        for name in ("A", "B"):
            core.start(name)
        for answer in core.compare_once("The value", GenerationParams(max_tokens=10**9, chat=False)):
            assert answer.text == ""
            assert answer.error == (
                "the engine refused the request (HTTP 400): max_tokens=1000000000 cannot be greater than "
                "max_model_len=512. Please request fewer output tokens. (parameter=max_tokens, value=1000000000)"
            )
    finally:
        core.shutdown()


@pytest.mark.engine
def test_wrong_api_key_for_an_attached_endpoint(arena: Arena, tmp_path: Path) -> None:
    core = Arena(attached(arena, api_key="not-the-key"), data_dir=tmp_path, device=DEVICE)
    try:
        for name in ("A", "B"):
            assert core.start(name).state == "ready", "/health is open; /v1 wants the key"
        answers = core.compare_once("The value", FEW)
        assert [a.error for a in answers] == ["the engine refused the request (HTTP 401): Unauthorized"] * 2
    finally:
        core.shutdown()


@pytest.mark.engine
def test_new_session_per_request_dodges_the_rate_limit(arena: Arena, tmp_path: Path) -> None:
    """The per-visitor limit counts per Gradio session; a script opens a new session per request.
    What bounds such a script is the queue (concurrency + queue_size, tests/test_load.py)."""
    public = Arena(attached(arena), data_dir=tmp_path, device=DEVICE, limits=LOCKED.limits)
    for name in ("A", "B"):
        public.start(name)
    demo = launch(public, LOCKED)
    try:
        same = Client(demo.local_url, verbose=False)
        messages = [compare(same, "The value", max_tokens=4)[4] for _ in range(4)]
        assert messages[:3] == ["", "", ""]
        assert messages[3].startswith("✕ this instance allows 3 requests per minute per visitor; try again in")
        fresh = [compare(Client(demo.local_url, verbose=False), "The value", max_tokens=4) for _ in range(4)]
        assert all(a and b and m == "" for a, b, _, _, m in fresh), "each new session is a new visitor"
    finally:
        demo.close()
        public.shutdown()


HISTORY_FULL_APP = """
import os, resource, sys
from pathlib import Path
from playground.arena import Arena
from playground.specs import EngineSpec
from playground.ui import build_ui
data, how, urls, keys = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
specs = [EngineSpec(model="unused", endpoint=u, api_key=k) for u, k in zip(urls, keys)]
arena = Arena(specs, data_dir=data, sample_interval_s=3600)  # one memory sample: the runs are what is saved
for name in "AB":
    arena.start(name)
demo = build_ui(arena)
demo.queue().launch(prevent_thread_lock=True, quiet=True, server_port=int(sys.argv[5]))
print("ready", flush=True)
sys.stdin.readline()
if how == "tmpfs":  # fill the disk
    with open(data / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(65536))
        except OSError:
            pass
else:  # no file may grow past the largest one there now
    biggest = max(p.stat().st_size for p in data.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (biggest, resource.RLIM_INFINITY))
print("full", flush=True)
sys.stdin.readline()
"""


@pytest.mark.engine
@pytest.mark.parametrize("how", ["rlimit", "tmpfs"])
def test_history_disk_full_mid_session(how: str, arena: Arena, tmp_path: Path) -> None:
    """The app saves a compare, then its disk fills (a 4 MB tmpfs filled up, or RLIMIT_FSIZE at the
    current file sizes): compares still answer and say the run was not saved."""
    engines = [arena.slot(n).engine for n in ("A", "B")]
    urls = ",".join(e.base_url for e in engines if e)
    keys = ",".join(e.api_key for e in engines if e)
    data = tmp_path / "data"
    data.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-c", HISTORY_FULL_APP, str(data), how, urls, keys, str(port)]
    if how == "tmpfs":
        if not can_mount_tmpfs():
            pytest.skip("this machine does not allow `unshare -m` + mount (no CAP_SYS_ADMIN)")
        cmd = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@"', str(data), *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert app.stdout is not None and app.stdin is not None
        assert app.stdout.readline().strip() == "ready"
        visitor = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert compare(visitor, "The value")[4] == ""
        app.stdin.write("fill\n")
        app.stdin.flush()
        assert app.stdout.readline().strip() == "full"
        text_a, text_b, _, _, message = compare(visitor, "The function returns")
        assert text_a and text_b, "the answers still come"
        reason = "database or disk is full" if how == "tmpfs" else "disk I/O error"
        assert message == f"⚠ the run was not saved: OperationalError: {reason}"
        rows = visitor.predict(api_name="/history")["data"]
        assert [r[3] for r in rows] == ["The value"], "the saved run is still listed"
    finally:
        app.kill()
        app.wait(timeout=30)


@pytest.mark.engine
def test_launched_engine_that_never_becomes_ready(tmp_path: Path) -> None:
    """A real vLLM launch given 5 s (it needs 30-60 s here): stopped, its whole process tree gone."""
    message, seconds, seen = failed_start(SPEC_A, tmp_path, timeout_s=5)
    assert message.startswith("engine was not ready after 5 s; see ") and message.endswith(".log")
    assert seen and seconds < 60
    time.sleep(1)
    assert alive(seen) == []


MODEL_NOT_FOUND = (
    "engine stopped (exit code 1): the model could not be found: check the Hugging Face id or local path "
    "(and network access for hub models) — "
)


@pytest.mark.engine
def test_unknown_hub_model_without_network(tmp_path: Path) -> None:
    message, seconds, seen = failed_start(replace(SPEC_A, model="nobody-here/no-such-model-xyz"), tmp_path)
    assert message.startswith(MODEL_NOT_FOUND)
    assert "couldn't connect to 'https://huggingface.co'" in message or "Repository Not Found" in message
    print(f"unknown hub model: failed after {seconds:.0f} s")
    assert alive(seen) == []


@pytest.mark.engine
def test_folder_without_a_model(tmp_path: Path) -> None:
    message, _, _ = failed_start(replace(SPEC_A, model="/etc"), tmp_path)
    assert message.startswith(MODEL_NOT_FOUND)
    assert "Invalid repository ID or local directory specified: '/etc'" in message


@pytest.mark.engine
def test_kv_cache_bigger_than_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory over-committed for real: the operator's VLLM_CPU_KVCACHE_SPACE asks for 1000 GiB. vLLM
    checks it against free memory before allocating, so nothing is actually taken from the machine."""
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1000")
    message, _, seen = failed_start(SPEC_A, tmp_path)
    assert message.startswith(
        "engine stopped (exit code 1): not enough free host memory for the KV cache the engine was given "
        "(VLLM_CPU_KVCACHE_SPACE): lower it, or stop what else uses the memory — "
    )
    assert "is less than requested memory for kv (1000.0 GiB)" in message
    assert alive(seen) == []


def test_kv_cache_failure_names_the_cause_not_the_wrapper() -> None:
    log = [
        "(Worker pid=7) ERROR 11-27 06:57:27 [multiproc_executor.py:1063] ValueError: Available memory on node 0 "
        "(17.85/19.84 GiB) on kv cache allocation is less than requested memory for kv (1000.0 GiB).",
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    ]
    message = explain_exit(read_log(log), 1)
    assert "not enough free host memory" in message
    assert message.endswith("less than requested memory for kv (1000.0 GiB).")
    assert "See root cause above" not in message
