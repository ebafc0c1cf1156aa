"""Where the history and the model cache go: a persistent volume when one is mounted, else the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.arena.defaults import Storage, storage, use_storage, writable_mount
from playground.ui.history import storage_note

SHM = "/dev/shm"  # a real mount point on Linux hosts, writable by this process in the project's machines


def test_without_a_volume_the_data_folder_is_the_configured_one(tmp_path: Path) -> None:
    chosen = storage({"PLAYGROUND_DATA": str(tmp_path)})
    assert chosen == Storage(data=tmp_path, hf_home=None, volume="")
    assert not chosen.on_volume and not chosen.lost_on_restart
    assert storage({}).data == Path("data").resolve()
    assert storage_note(chosen) == "" and storage_note(None) == ""


def test_an_expected_volume_that_is_not_mounted_keeps_the_folders_and_says_so(tmp_path: Path) -> None:
    env = {"PLAYGROUND_DATA": str(tmp_path / "data"), "PLAYGROUND_VOLUME": str(tmp_path), "HF_HOME": "/cache"}
    assert not writable_mount(str(tmp_path))  # a plain folder, not a mount point
    chosen = use_storage(env)
    assert chosen == Storage(data=tmp_path / "data", hf_home=None, volume=str(tmp_path))
    assert chosen.lost_on_restart and env["HF_HOME"] == "/cache"  # nothing moved
    assert "VLLM_CACHE_ROOT" not in env  # no volume: vLLM's default (~/.cache/vllm) stays
    assert "History does not survive a restart here" in storage_note(chosen)
    assert str(tmp_path / "data") in storage_note(chosen)


@pytest.mark.skipif(not writable_mount(SHM), reason=f"{SHM} is not a writable mount point here")
def test_a_mounted_volume_takes_the_history_and_the_model_cache() -> None:
    env = {"PLAYGROUND_DATA": "/home/user/data", "PLAYGROUND_VOLUME": SHM, "HF_HOME": "/home/user/.cache/hf"}
    chosen = use_storage(env)  # decides and sets the variables; creates nothing
    cache = Path(SHM) / "vllm-cache"
    assert chosen == Storage(Path(SHM) / "playground", Path(SHM) / "huggingface", SHM, compile_cache=cache)
    assert env["PLAYGROUND_DATA"] == f"{SHM}/playground" and env["HF_HOME"] == f"{SHM}/huggingface"
    # vLLM's compile cache and Triton's kernels outlast a restart too: the next start is a warm one.
    assert (env["VLLM_CACHE_ROOT"], env["TRITON_CACHE_DIR"]) == (str(cache), f"{cache}/triton")
    kept = {"PLAYGROUND_VOLUME": SHM, "VLLM_CACHE_ROOT": "/fast/nvme/vllm"}
    use_storage(kept)
    assert kept["VLLM_CACHE_ROOT"] == "/fast/nvme/vllm"  # the operator's own choice stays
    assert chosen.on_volume and not chosen.lost_on_restart
    assert storage(env) == chosen  # deciding again gives the same folders
    assert storage_note(chosen) == f"Runs are kept on the persistent volume ({SHM}), so they outlast a restart."
