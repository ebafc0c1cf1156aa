"""The app's requirements for vLLM's Docker image: a package the image already has loses its pin.

    python3 image_requirements.py requirements.txt image-packages.txt > app-requirements.txt

image-packages.txt is the image's `pip list --format=freeze`. The Dockerfile installs the output with
that same list as the constraints file, so a package vLLM's image brings keeps the version vLLM chose
(e.g. numpy, which requirements.txt pins for the local environments) and every other package installs
at the version requirements.txt pins. Standard library only: it runs before the app is installed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_names(freeze: str) -> set[str]:
    """Canonical names from `pip list --format=freeze` (or `pip freeze`) output."""
    return {canonical(m.group(1)) for line in freeze.splitlines() if (m := NAME.match(line)) and "==" in line}


def image_requirements(requirements: str, installed: Iterable[str]) -> str:
    """requirements.txt with the version dropped from every package in `installed`; comments are kept."""
    have = {canonical(n) for n in installed}
    out = []
    for line in requirements.splitlines():
        text = line.split("#", 1)[0].strip()
        if text.startswith("-"):
            raise ValueError(f"an option line cannot be rewritten for the image: {line!r}")
        match = NAME.match(text)
        if match and canonical(match.group(1)) in have:
            marker = text.partition(";")[2].strip()
            line = match.group(1) + (match.group(2) or "") + (f"; {marker}" if marker else "")
            line += "  # the image's version (constraints)"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    """Print the image's requirements; usage as in the module docstring."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    requirements, freeze = (Path(a).read_text() for a in argv)
    sys.stdout.write(image_requirements(requirements, installed_names(freeze)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
