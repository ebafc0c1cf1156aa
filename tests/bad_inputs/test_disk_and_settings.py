"""Disks and settings: full disks and file size limits, corrupt or unwritable history, bad settings at
start, exports of what does not exist."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from playground.arena.core import Arena
from playground.tiny.build import is_complete, source_hash
from tests.bad_inputs.conftest import (
    ROOT,
    cli,
    compare,
    run,
)


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
        arena.saved.export("xml")


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


HISTORY_FULL_APP = """
import os, resource, sys
from pathlib import Path
from playground.arena import Arena
from playground.measure.specs import EngineSpec
from playground.ui.app import build_ui
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
