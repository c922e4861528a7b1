"""Facts about the machine and the software versions, recorded next to the numbers.

Versions are read from package metadata so the orchestrating process stays small:
a child's ``ru_maxrss`` can start from its parent's peak, so the parent must not grow.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata

PACKAGES = ("numpy", "joblib", "skops", "scikit-learn", "modelsafe", "blake3", "zstandard")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _filesystem(path: str) -> str:
    """Filesystem type of the mount holding ``path`` (from /proc/mounts), or "unknown"."""
    best, fstype = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mount = parts[1]
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, fstype = mount, f"{parts[2]} ({parts[0]} on {mount})"
    except OSError:
        pass
    return fstype


# Distributions that install a module under another project name (same import, same API).
_ALSO_KNOWN_AS = {"xgboost": ("xgboost-cpu",)}


def _version(package: str) -> str:
    for name in (package, *_ALSO_KNOWN_AS.get(package, ())):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return version if name == package else f"{version} ({name})"
    return "not installed"


def machine_facts(tmpdir: str, packages: tuple[str, ...] = PACKAGES) -> dict[str, object]:
    """CPU, cores, RAM, OS, Python, versions of ``packages``, date and the temp filesystem."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {name: _version(name) for name in packages},
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "temp_filesystem": _filesystem(tmpdir),
    }
