"""What code and packages produced a run: git commit, dirty flag, package versions."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: Packages whose versions every run records.
PACKAGES = ["segmentlab", "scikit-learn", "pandas", "numpy", "hydra-core", "mlflow", "optuna",
            "hdbscan", "umap-learn", "gensim", "xgboost-cpu", "pyarrow"]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's results."""
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_tags() -> dict[str, str]:
    """Git commit (and whether the work tree had uncommitted changes) of the code that ran."""
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                 cwd=Path(__file__).resolve().parent)
            return out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}
