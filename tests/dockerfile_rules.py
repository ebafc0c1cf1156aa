"""The rules a Dockerfile must keep to serve this app on a Hugging Face GPU Space, checked without Docker.

The instructions are read in order by dockerfile-parse (requirements-dev.txt), so continuation lines,
comments and ARG defaults are taken as Docker takes them. Each rule returns sentences naming what is
wrong; tests/test_dockerfile.py holds the tests and the broken Dockerfiles (mutants) each rule catches.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
APP_PORT = "7860"  # what Spaces expects unless app_port says otherwise
SPACE_VOLUME = "/data"  # where a Space's persistent storage is mounted, at run time only
BASE_IMAGE = re.compile(r"^vllm/vllm-openai:v(\d+\.\d+\.\d+)(@sha256:[0-9a-f]{64})?$")
DURATION = re.compile(r"^\d+[smh]$")  # Spaces' startup_duration_timeout, e.g. 30m or 1h
ROOT_USER = "0"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined and comments dropped."""

    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's arguments, or None for the shell form."""
        return json.loads(self.value) if self.value.startswith("[") else None


def _parser(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions in order, as dockerfile-parse reads them."""
    return [Instruction(s["instruction"], s["value"]) for s in _parser(text).structure if s["instruction"] != "COMMENT"]


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """The image's ENV after the last instruction."""
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


def run_commands(value: str, env: dict[str, str]) -> list[list[str]]:
    """The simple commands of one RUN, in order, with the image's ENV expanded."""
    commands = []
    for part in re.split(r"&&|\|\||;|\bthen\b|\belse\b|\bfi\b", _expand(value, env)):
        words = [w for w in shlex.split(part) if w != "if"]
        if words:
            commands.append(words)
    return commands


def _shell_commands(instructions: list[Instruction], env: dict[str, str]) -> list[list[str]]:
    """Every simple command of every RUN, in order."""
    return [c for ins in instructions if ins.keyword == "RUN" for c in run_commands(ins.value, env)]


def _args(words: list[str]) -> list[str]:
    return [w for w in words[1:] if not w.startswith("-")]


def _uid_1000_names(commands: list[list[str]]) -> set[str]:
    users = [c for c in commands if c[0] == "useradd" and re.search(r"(-u|--uid)[ =]1000\b", " ".join(c))]
    return {"1000"} | {c[-1] for c in users}


def _user_problems(instructions: list[Instruction], commands: list[list[str]], env: dict[str, str]) -> list[str]:
    """A non-root user of uid 1000 runs the app and owns HF_HOME."""
    problems = []
    names = _uid_1000_names(commands)
    if names == {"1000"}:
        problems.append("no `useradd --uid 1000`: Spaces run the container as uid 1000")
    last_user = [i.value for i in instructions if i.keyword == "USER"][-1:] or ["root"]
    if last_user[0].split(":")[0] not in names:
        problems.append(f"the last USER is {last_user[0]!r}, not the uid-1000 user")
    home = env.get("HF_HOME", "")
    if not home.startswith("/"):
        return [*problems, "ENV HF_HOME (an absolute path) is missing: the model cache must be writable"]
    made = home_folders(instructions, env)
    if made.get(home, (ROOT_USER, ""))[0] not in names:
        problems.append(f"HF_HOME {home} must be made (mkdir) and then given to the uid-1000 user (chown)")
    return problems


class _HomeFolders:
    """The folders an image makes under $HOME, replayed instruction by instruction (see home_folders)."""

    def __init__(self, home: str) -> None:
        self.home = home.rstrip("/")
        self.made: dict[str, tuple[str, str]] = {}  # folder -> (owner, the instruction that made it)
        self.user, self.workdir = ROOT_USER, "/"

    def make(self, path: str, owner: str, how: str, parents: bool = True) -> None:
        path = posixpath.normpath(posixpath.join(self.workdir, path))
        while (path == self.home or path.startswith(self.home + "/")) and path not in self.made:
            self.made[path] = (owner, how)
            if not parents:
                break
            path = posixpath.dirname(path)

    def chown(self, owner: str, path: str, recursive: bool) -> None:
        path = posixpath.normpath(path)
        for folder, (_, how) in list(self.made.items()):
            if folder == path or (recursive and folder.startswith(path.rstrip("/") + "/")):
                self.made[folder] = (owner.split(":")[0], how)

    def run(self, c: list[str]) -> None:
        """One RUN command: useradd --create-home, mkdir (-p: its parents too), chown (-R: all below)."""
        if c[0] == "useradd" and ({"-m", "--create-home"} & set(c)):
            home_dir = next((c[i + 1] for i, w in enumerate(c[:-1]) if w in ("-d", "--home-dir")), "/home/" + c[-1])
            uid = next((c[i + 1] for i, w in enumerate(c[:-1]) if w in ("-u", "--uid")), c[-1])
            self.make(home_dir, uid, " ".join(c), parents=False)
        elif c[0] == "mkdir":
            for path in _args(c):
                self.make(path, self.user, " ".join(c), parents="-p" in c or "--parents" in c)
        elif c[0] == "chown" and len(_args(c)) > 1:
            owner, *paths = _args(c)
            for path in paths:
                self.chown(owner, path, recursive="-R" in c or "--recursive" in c)

    def instruction(self, ins: Instruction, env: dict[str, str]) -> None:
        if ins.keyword == "USER":
            self.user = ins.value.split(":")[0]
        elif ins.keyword == "WORKDIR":
            target = _expand(ins.value, env)
            self.make(target, ROOT_USER, f"WORKDIR {target}")
            self.workdir = posixpath.join(self.workdir, target)
        elif ins.keyword in ("COPY", "ADD"):
            words = shlex.split(_expand(ins.value, env))
            owner = next((w.split("=", 1)[1].split(":")[0] for w in words if w.startswith("--chown=")), ROOT_USER)
            how = f"{ins.keyword} {' '.join(words)}"
            self.make(words[-1], owner, how)
            if "." in _args([ins.keyword, *words])[:-1]:  # the build context's own folders come along
                self.made[posixpath.normpath(posixpath.join(self.workdir, words[-1])) + "/*"] = (owner, how)
        elif ins.keyword == "RUN":
            for c in run_commands(ins.value, env):
                self.run(c)


def home_folders(instructions: list[Instruction], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each folder the image makes under $HOME -> (its owner at the end, the instruction that made it).

    A folder WORKDIR creates is taken as root's: the classic builder makes it so, BuildKit gives it
    the current USER, and the image must not depend on which builder a host uses. `DEST/*` stands for
    the folders a COPY of the build context (`.`) brings: its --chown user's, else root's.
    """
    folders = _HomeFolders(env.get("HOME", "/home/user"))
    for ins in instructions:
        folders.instruction(ins, env)
    return dict(sorted(folders.made.items()))


def ownership_problems(instructions: list[Instruction], env: dict[str, str]) -> list[str]:
    """Every folder the image makes under $HOME belongs to uid 1000 at the end (the app may write in any)."""
    names = _uid_1000_names(_shell_commands(instructions, env))
    return [
        f"{folder} (made by `{how}`) is owned by {owner!r} at the end, not uid 1000: the app cannot write there"
        for folder, (owner, how) in home_folders(instructions, env).items()
        if owner not in names
    ]


def _pip(words: list[str]) -> str:
    """The pip subcommand of a command (`pip install ...`, `python3 -m pip check`), else ''."""
    at = next((i for i, w in enumerate(words) if posixpath.basename(w) in ("pip", "pip3")), -1)
    return words[at + 1] if 0 <= at < len(words) - 1 else ""


def _app_env(commands: list[list[str]]) -> tuple[str, bool]:
    """The folder of the environment the image makes (`python3 -m venv DIR`, `virtualenv DIR`), and whether
    it sees the image's packages (--system-site-packages); ("", False) when the image makes none."""
    for c in commands:
        at = 3 if c[1:3] == ["-m", "venv"] else 1 if posixpath.basename(c[0]) == "virtualenv" else 0
        folders = [w for w in c[at:] if not w.startswith("-")] if at else []
        if folders:
            return posixpath.normpath(folders[-1]), "--system-site-packages" in c
    return "", False


def app_env_problems(commands: list[list[str]], env: dict[str, str], cmd: list[str]) -> list[str]:
    """The app lives in its own environment over the image's packages, and the engines in the image's own.

    requirements.txt installs into an environment made with --system-site-packages (the app's pins shadow
    the image's versions for the app only, the image's torch and vLLM stay visible to it); no pip install
    touches the image's environment; `pip check` of the app's environment follows the last install; the
    engine Python (PLAYGROUND_ENGINE_PYTHON) is the image's own and a RUN proves it imports vllm; CMD runs
    the app's Python.
    """
    folder, system_site = _app_env(commands)
    if not folder:
        return ["no environment for the app (`python3 -m venv --system-site-packages DIR`): its pins would win"]
    problems = []
    if not system_site:
        problems.append(f"the app's environment {folder} needs --system-site-packages: the app uses the image's torch")
    ours = folder + "/bin/"
    installs = [n for n, c in enumerate(commands) if _pip(c) == "install"]
    for n in installs:
        if not commands[n][0].startswith(ours):
            problems.append(f"`{' '.join(commands[n])}` installs into the image's own environment, not {folder}")
    checks = [n for n, c in enumerate(commands) if _pip(c) == "check" and c[0].startswith(ours)]
    if installs and (not checks or max(checks) < max(installs)):
        problems.append(f"no `{ours}python -m pip check` after the last pip install: pip reports conflicts, exits 0")
    engine = env.get("PLAYGROUND_ENGINE_PYTHON", "")
    if not engine.startswith("/") or engine.startswith(ours):
        problems.append(f"ENV PLAYGROUND_ENGINE_PYTHON must be the image's own Python (vLLM's), has {engine!r}")
    elif not any(c[0] == engine and "import vllm" in " ".join(c) for c in commands):
        problems.append(f'no `{engine} -c "import vllm"` in a RUN: the build must prove the engine Python has vLLM')
    if cmd[:1] and not cmd[0].startswith(ours):
        problems.append(f"CMD must start the app with {ours}python (the app's environment), has {cmd[0]!r}")
    return problems


def volume_problems(instructions: list[Instruction], env: dict[str, str]) -> list[str]:
    """PLAYGROUND_VOLUME names a Space's persistent storage, and the image declares no VOLUME there.

    The app takes a writable mount point at PLAYGROUND_VOLUME for persistent storage. `VOLUME /data`
    would give every container an anonymous volume of its own, a mount point that a new container
    does not get back, so the app would promise a history that the next deployment loses.
    """
    volume = env.get("PLAYGROUND_VOLUME")
    if volume != SPACE_VOLUME:
        return [f"ENV PLAYGROUND_VOLUME={SPACE_VOLUME} is needed (a Space's persistent storage), has {volume!r}"]
    volumes = [i.value for i in instructions if i.keyword == "VOLUME"]
    declared = [v for v in volumes if volume in re.findall(r'[^\s\[\]",]+', v)]
    if declared:
        return [f"VOLUME {declared[0]}: the image must not declare {volume}, the Space mounts its storage there"]
    return []


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


def front_matter(readme: str) -> dict[str, str]:
    """The README's YAML front matter (the Space's configuration), flat keys only."""
    head = readme.split("---")[1] if readme.startswith("---") else ""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines() if ":" in line)}


def readme_problems(readme: str, vllm_version: str) -> list[str]:
    """The Space's front matter, and the deploying section's driver, tag and persistence facts."""
    space = front_matter(readme)
    problems = []
    if space.get("sdk") != "docker" or space.get("app_port") != APP_PORT:
        problems.append(f"README front matter needs sdk: docker and app_port: {APP_PORT}, has {space}")
    if not DURATION.match(space.get("startup_duration_timeout", "")):
        problems.append("README front matter needs startup_duration_timeout (e.g. 1h): the first start is slow")
    section = readme.partition("## Deploying on Hugging Face Spaces")[2].partition("\n## ")[0]
    for needed in ("R580", f"vllm/vllm-openai:v{vllm_version}-cu129", "VLLM_IMAGE", SPACE_VOLUME, "T4"):
        if needed not in section:
            problems.append(f"README's deploying section does not mention {needed}")
    return problems


def deployment_problems(text: str, root: Path = ROOT, readme: str | None = None) -> list[str]:
    """What keeps a Dockerfile from serving this app on a Hugging Face GPU Space; empty when nothing."""
    instructions = parse_dockerfile(text)
    env = image_env(instructions)
    problems = []
    base = _parser(text).baseimage or ""  # the last FROM, its ARG defaults filled in
    pinned = BASE_IMAGE.match(base)
    gpu_pin = re.search(r"^vllm==(\S+)", (root / "requirements-gpu.txt").read_text(), re.M)
    if not pinned:
        problems.append(f"the base image must be vLLM's CUDA image at a version (vllm/vllm-openai:vX.Y.Z): {base}")
    elif gpu_pin and pinned.group(1) != gpu_pin.group(1):
        problems.append(f"the base image has vLLM {pinned.group(1)}, requirements-gpu.txt pins {gpu_pin.group(1)}")
    commands = _shell_commands(instructions, env)
    problems += _user_problems(instructions, commands, env)
    problems += ownership_problems(instructions, env)
    cmd = [i.exec_form() for i in instructions if i.keyword == "CMD"][-1:]
    problems += app_env_problems(commands, env, (cmd[0] if cmd else None) or [])
    problems += volume_problems(instructions, env)
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
    readme = (root / "README.md").read_text() if readme is None else readme
    problems += readme_problems(readme, gpu_pin.group(1) if gpu_pin else "")
    problems += context_problems((root / ".dockerignore").read_text())
    return problems


# What a clone holds besides the code: the three virtual environments and uv that `make install` makes
# (scripts/install-all, scripts/pip-install) and the data folder. `COPY . .` would send them to the image:
# gigabytes that the image installs itself.
LOCAL_ONLY = (".venv", ".venv-quant", ".venv-eval", ".tools", "data")


def context_problems(dockerignore: str) -> list[str]:
    """What of a clone's local environments a .dockerignore lets into the build context."""
    left_out = {line.strip().strip("/") for line in dockerignore.splitlines() if line.strip()}
    return [
        f".dockerignore must leave out {path} (a local environment or data, not the image's)"
        for path in LOCAL_ONLY
        if path not in left_out
    ]
