"""Build the tiny model's bf16, AWQ and GPTQ checkpoint folders from the committed weights."""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from playground.tiny.quantize import export_awq, export_gptq

SOURCE_DIR = Path(__file__).resolve().parents[2] / "assets" / "tiny" / "bf16"
MARKER = ".tiny-build.json"
FORMATS = ("bf16", "awq", "gptq")
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
TRAIN_HINT = "python -m playground.tiny.train --out assets/tiny/bf16"


def check_source(source: Path) -> None:
    """Raise FileNotFoundError naming what is missing from the bf16 source checkpoint."""
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"tiny model source checkpoint {source} is missing {', '.join(missing)}; "
            f"it ships in the repository under assets/tiny/bf16 (recreate with: {TRAIN_HINT})"
        )


def source_hash(source: Path) -> str:
    """SHA-256 over the source checkpoint files and the quantizer code, so either change rebuilds."""
    digest = hashlib.sha256()
    files = sorted(p for p in source.iterdir() if p.is_file())
    files.append(Path(__file__).with_name("quantize.py"))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def is_complete(out: Path, digest: str) -> bool:
    """True when `out` holds a finished build of the source with this hash."""
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("source_hash") != digest:
        return False
    return all((out / fmt / name).is_file() for fmt in FORMATS for name in REQUIRED_FILES)


@contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive file lock beside `out` so concurrent builds don't collide."""
    lock_path = out.parent / f".{out.name}.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_readable(root: Path) -> None:
    """Give the staged tree normal permissions (mkdtemp and safetensors create owner-only files)."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def replace_dir(staged: Path, out: Path) -> None:
    """Move the finished `staged` folder to `out`, removing an older build that is there."""
    if out.exists():
        if not (out / MARKER).is_file() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a tiny-model build; refusing to replace it")
        old = out.with_name(f".{out.name}.old-{time.time_ns()}")
        out.rename(old)
        staged.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(out)


def write_failure(exc: BaseException) -> str:
    """The first reason in a failed copy or write, in one line."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        return str(exc.args[0][0][-1])  # copytree collects (src, dst, why) for every file
    return str(exc)


def build_tiny(out: Path, source: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Write out/bf16, out/awq and out/gptq (skipped when already built) and return their paths."""
    out = Path(out).resolve()
    source = Path(source).resolve() if source is not None else SOURCE_DIR
    check_source(source)
    digest = source_hash(source)
    paths = {fmt: out / fmt for fmt in FORMATS}
    if not force and is_complete(out, digest):
        return paths
    out.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(out):
        if not force and is_complete(out, digest):
            return paths
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            shutil.copytree(source, staged / "bf16")
            export_awq(source, staged / "awq")
            export_gptq(source, staged / "gptq")
            marker = {"source": str(source), "source_hash": digest, "formats": list(FORMATS)}
            (staged / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            make_readable(staged)
            replace_dir(staged, out)
        except (OSError, SafetensorError) as exc:  # a full disk, a size limit: nothing half-built is kept
            raise OSError(f"could not build the tiny model in {out}: {write_failure(exc)}") from exc
        finally:
            if staged.exists():
                shutil.rmtree(staged, ignore_errors=True)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: build into a folder and print the checkpoint paths."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder that receives bf16/, awq/ and gptq/")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date build exists")
    args = parser.parse_args(argv)
    for fmt, path in build_tiny(args.out, force=args.force).items():
        print(f"{fmt}\t{path}")


if __name__ == "__main__":
    main()
