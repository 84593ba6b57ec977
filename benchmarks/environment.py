"""What a benchmark ran on: hardware, library versions and the code revision, as flat strings
that go into every CSV row (so that a CSV alone is enough to regenerate the report)."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("synthpipe", "torch", "sdv", "ctgan", "rdt", "sdmetrics", "scikit-learn", "pandas")


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.machine()


def memory_gib() -> float | None:
    try:
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    except OSError:
        return None
    return round(int(match.group(1)) / 2**20, 1) if match else None


def gpu_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # no torch or a broken driver: report no GPU rather than fail the run
        pass
    return "none"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision(repo: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}{'+dirty' if dirty else ''}" if rev else "unknown"


def describe(repo: Path) -> dict[str, str]:
    """Flat key -> string description of this machine and software."""
    info = {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory_gib": str(memory_gib()),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "git": git_revision(repo),
    }
    info.update({f"v_{name.replace('-', '_')}": version(name) for name in LIBRARIES})
    return info
