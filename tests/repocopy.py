"""A throw-away copy of this repository: committed tree, own git history, raw data pulled.

Shared by the end-to-end tests and bench/pipeline.py, so both run the real `dvc` against
a workspace they may change freely.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tool_env() -> dict[str, str]:
    """This interpreter's venv first on PATH, so `dvc` and `python` are the project's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # `dvc exp run` commits experiments: give git an identity on machines without one.
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "mushroom tests")
        env.setdefault(f"GIT_{role}_EMAIL", "tests@example.invalid")
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=900
    )
    if done.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def remote_url() -> Path:
    """The project's default remote, made absolute (relative URLs are relative to .dvc/)."""
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    remote = config["core"]["remote"]
    return (REPO / ".dvc" / config[f"'remote \"{remote}\"'"]["url"]).resolve()


def copy_repository(dest: Path, env: dict[str, str] | None = None) -> Path:
    tracked = (
        # untracked files too (not ignored ones): new work is tested before it is committed
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "copy"], dest, env)
    run(["dvc", "remote", "modify", "--local", "origin", "url", str(remote_url())], dest, env)
    run(["dvc", "pull", "data/raw/uci.dvc", "data/raw/secondary.dvc"], dest, env)
    return dest
