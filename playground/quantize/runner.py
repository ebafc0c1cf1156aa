"""Runs the quantizer: the worker in .venv-quant as its own process group, its progress read from
its log, Cancel (the whole tree), and the finished folder renamed into place with its model card.
Nothing half-written is ever left under the output name."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.measure.quant_log import QuantProgress, read_progress, split_lines
from playground.measure.quant_plan import QuantError, QuantPlan
from playground.procs.tree import stop_tree, tree_pids
from playground.views.model_card import CardFacts, llmcompressor_code, model_card

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
INSTALL = ROOT / "scripts" / "install-quant"
HOW_TO_CREATE = "create it with `make quant-env` (scripts/install-quant: about 2 minutes and 1.5 GB)"
# Cheap: finds the packages without importing torch (which takes seconds).
_ENV_CHECK = (
    "import importlib.metadata as m, importlib.util as u\n"
    "missing = [n for n in ('torch', 'transformers', 'datasets', 'compressed_tensors', 'llmcompressor')"
    " if u.find_spec(n) is None]\n"
    "print('missing: ' + ', '.join(missing) if missing else m.version('llmcompressor'))"
)


class QuantEnvError(QuantError):
    """The quantizer's environment is missing or broken; the message says how to make it."""


def quant_python() -> tuple[Path, bool]:
    """The quantizer's interpreter and whether the user named it (PLAYGROUND_QUANT_PYTHON)."""
    named = os.environ.get("PLAYGROUND_QUANT_PYTHON", "").strip()
    if named:
        return Path(named).expanduser(), True
    return ROOT / ".venv-quant" / "bin" / "python", False


def check_env(python: Path) -> str:
    """llm-compressor's version in that environment; QuantEnvError saying how to fix it otherwise."""
    if not python.exists():
        raise QuantEnvError(f"the quantizer environment is missing ({python} does not exist): {HOW_TO_CREATE}")
    try:
        out = subprocess.run([str(python), "-c", _ENV_CHECK], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QuantEnvError(f"the quantizer environment {python} does not run ({exc}): {HOW_TO_CREATE}") from exc
    answer = out.stdout.strip().splitlines()[-1:] or [out.stderr.strip()[-200:]]
    if out.returncode or answer[0].startswith("missing") or not answer[0]:
        why = answer[0] or f"exit code {out.returncode}"
        raise QuantEnvError(
            f"the quantizer environment {python} is broken ({why}): recreate it with "
            "`rm -rf .venv-quant && make quant-env`"
        )
    return answer[0]


def check_calibration(path: Path) -> None:
    """QuantError for a calibration file that is missing, not a file, empty or blank."""
    if not path.exists():
        raise QuantError(f"calibration file {path} does not exist")
    if not path.is_file():
        raise QuantError(f"calibration file {path} is not a file")
    if not path.read_text(encoding="utf-8", errors="replace").strip():
        raise QuantError(f"calibration file {path} is empty: give a text file with sample text")


def weight_file_bytes(folder: Path) -> int:
    """Bytes of a checkpoint's weight files (safetensors, or PyTorch .bin)."""
    files = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
    return sum(f.stat().st_size for f in files)


@dataclass
class QuantOutcome:
    """How a quantization run ended: done (the folder is in place), failed or cancelled."""

    state: str  # running, done, failed, cancelled
    out: Path
    progress: QuantProgress
    message: str = ""
    seconds: float = 0.0
    facts: CardFacts | None = None
    log_path: Path | None = None
    code: str = ""  # the llm-compressor script that makes the same checkpoint
    result: dict[str, Any] = field(default_factory=dict)


class QuantJob:
    """One quantization: start it, watch it, cancel it; `wait` finishes or cleans up."""

    def __init__(
        self,
        plan: QuantPlan,
        *,
        model_path: str,
        out: Path,
        log_dir: Path,
        python: Path,
        calib: Path | None = None,
        calib_label: str = "",
        install_first: bool = False,
    ):
        self.plan = plan
        self.model_path = model_path
        self.out = out
        self.log_dir = log_dir
        self.python = python
        self.calib = calib if plan.scheme.calibrated else None
        self.calib_label = calib_label or str(calib)
        self.install_first = install_first
        self.tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(3)}"
        self.log_path = log_dir / f"quantize-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}.log"
        self.request_path = self.log_path.with_suffix(".json")
        self.result_path = self.log_path.with_suffix(".result.json")
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = time.monotonic()
        self._cancelled = False
        self._offset = 0
        self._lines: list[str] = []
        self._outcome: QuantOutcome | None = None

    def code(self) -> str:
        """The llm-compressor script that makes the same checkpoint (for the card and "Run this yourself")."""
        req = self.plan.request
        return llmcompressor_code(
            self.model_path,
            self.plan.scheme.name,
            self.plan.group_size,
            calib=str(self.calib) if self.calib else None,
            samples=req.samples,
            seq_len=req.seq_len,
            out=str(self.out),
        )

    def start(self) -> None:
        """Launch the worker (after creating .venv-quant when `install_first`); returns at once."""
        if self.out.exists():
            raise QuantError(f"{self.out} already exists: choose another output folder or delete it")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        req = self.plan.request
        request = {
            "model": self.model_path,
            "scheme": self.plan.scheme.name,
            "group_size": self.plan.group_size,
            "calib": str(self.calib) if self.calib else None,
            "samples": req.samples,
            "seq_len": req.seq_len,
            "out": str(self.tmp),
            "result": str(self.result_path),
        }
        self.request_path.write_text(json.dumps(request, indent=2))
        cmd = [str(self.python), str(WORKER), str(self.request_path)]
        if self.install_first:  # one process group for both, so Cancel stops the install too
            cmd = ["bash", "-c", 'bash "$0" && exec "$@"', str(INSTALL), *cmd]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        with open(self.log_path, "wb") as log:
            log.write(("$ " + shlex.join(cmd) + "\n").encode())
            log.flush()
            self._proc = subprocess.Popen(  # noqa: S603 - a list, never a shell string from the user
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
                start_new_session=True,  # its own process group: Cancel kills the whole tree
            )
        self._started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the start."""
        if self._outcome is not None:
            return self._outcome.seconds
        return time.monotonic() - self._started

    def pids(self) -> list[int]:
        """The worker's process and all its descendants."""
        return tree_pids(self._proc)

    def progress(self) -> QuantProgress:
        """Phase and fraction from the log so far (reads only new bytes)."""
        if self.log_path.exists():
            with open(self.log_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
            cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            if cut:
                self._offset += cut
                self._lines += split_lines(chunk[:cut].decode("utf-8", "replace"))
                # tqdm rewrites one line hundreds of times: keep the log's meaning, not every frame
                if len(self._lines) > 20000:
                    self._lines = self._lines[:50] + self._lines[-10000:]
        progress = read_progress(self._lines, layers=self.plan.shape.layers)
        if self.install_first and progress.phase == "starting":
            return QuantProgress("installing", 0.0, "creating .venv-quant (llm-compressor; about 2 minutes)")
        return progress

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of the run's log."""
        self.progress()
        return "\n".join(self._lines[-lines:])

    def cancel(self, timeout_s: float = 10.0) -> None:
        """Stop the worker's whole process tree and remove its unfinished folder."""
        self._cancelled = True
        if self._proc is not None:
            stop_tree(self._proc, timeout_s)
        self._clean()

    def _clean(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait(
        self, on_progress: Callable[[QuantProgress, float], None] | None = None, poll_s: float = 0.25
    ) -> QuantOutcome:
        """Block until the worker ends; then rename the folder into place, or clean up."""
        if self._outcome is not None:
            return self._outcome
        assert self._proc is not None, "start() first"
        last = None
        while self._proc.poll() is None:
            progress = self.progress()
            if on_progress and (progress, round(self.elapsed_s)) != last:
                on_progress(progress, self.elapsed_s)
                last = (progress, round(self.elapsed_s))
            time.sleep(poll_s)
        progress = self.progress()
        seconds = time.monotonic() - self._started
        code = self.returncode()
        base = QuantOutcome("failed", self.out, progress, seconds=seconds, log_path=self.log_path, code=self.code())
        if self._cancelled:
            self._clean()
            base.state, base.message = "cancelled", f"cancelled after {seconds:.0f} s: no folder was written"
        elif code != 0:
            self._clean()
            base.message = self._failure(code)
        else:
            try:
                base = self._finish(base)
            except (OSError, ValueError, KeyError) as exc:
                self._clean()
                base.message = (
                    f"could not finish the checkpoint ({type(exc).__name__}: {exc}); nothing was left at {self.out}"
                )
        if on_progress:
            on_progress(base.progress, seconds)
        self._outcome = base
        return base

    def returncode(self) -> int | None:
        """The worker's exit code once it has ended."""
        return None if self._proc is None else self._proc.poll()

    def _failure(self, code: int | None) -> str:
        progress = self.progress()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if self.install_first and progress.phase in ("starting", "installing"):
            return f"creating the quantizer environment failed ({how}); see {self.log_path}, or run `make quant-env`"
        why = progress.error or "see the log"
        if "No space left" in why or "File too large" in why:
            why += " (the disk is full, or a file size limit applies)"
        return f"quantizing failed while {progress.phase} ({how}): {why}; log: {self.log_path}"

    def _finish(self, outcome: QuantOutcome) -> QuantOutcome:
        """Measure, write the model card, rename the folder into place (a rename: all or nothing)."""
        result = json.loads(self.result_path.read_text())
        before = weight_file_bytes(Path(self.model_path)) if Path(self.model_path).is_dir() else 0
        asked = self.plan.request.model
        facts = CardFacts(
            base_model=asked if asked == self.model_path else f"{asked} ({self.model_path})",
            scheme=self.plan.scheme.name,
            scheme_title=self.plan.scheme.title,
            group_size=self.plan.group_size,
            calibration=self.calib_label if self.calib else "",
            samples=int(result.get("samples") or 0),
            tokens=int(result.get("tokens") or 0),
            seq_len=self.plan.request.seq_len,
            before_bytes=before or int(result.get("base_bytes") or 0),
            after_bytes=weight_file_bytes(self.tmp),
            predicted_after_bytes=self.plan.after_bytes,
            seconds=outcome.seconds,
            quantize_seconds=float(result.get("quantize_s") or 0.0),
            versions=dict(result.get("versions") or {}),
            device=str(result.get("device") or ""),
            peak_rss_bytes=result.get("peak_rss_bytes"),
            predicted_peak_bytes=self.plan.peak.ram_bytes,
        )
        card = model_card(facts, outcome.code, f"vllm serve {shlex.quote(str(self.out))}")
        (self.tmp / "README.md").write_text(card, encoding="utf-8")
        os.rename(self.tmp, self.out)  # fails rather than merge when the name appeared meanwhile
        outcome.state, outcome.facts, outcome.result = "done", facts, result
        ratio = facts.after_bytes / facts.before_bytes if facts.before_bytes else 0.0
        outcome.message = (
            f"{self.plan.scheme.name} checkpoint written to {self.out} in {outcome.seconds:.1f} s: weights "
            f"{facts.before_bytes / 1e6:,.2f} MB → {facts.after_bytes / 1e6:,.2f} MB (×{ratio:.2f})"
        )
        return outcome
