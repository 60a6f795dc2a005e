"""Obtaining an engine: resolve its POM (``poms/<name>.xml``) with Maven and copy the whole jar
closure into ``<cache>/<name>-<pom digest>/lib``. A later run with the same POM reuses it
without Maven; a changed POM (a new version) resolves into a new folder.

The cache is filled atomically (a temporary folder renamed into place), so an interrupted
resolution never leaves a half-filled cache that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from chat_events.engines.availability import EngineUnavailableError, find_maven

ENGINES = ("kafka", "cassandra")
RESOLVE_TIMEOUT_S = 900


def default_cache_dir() -> Path:
    """``CHAT_ENGINES_CACHE``, else ``$XDG_CACHE_HOME/chat-events/engines`` (``~/.cache/...``):
    outside any repository, shared by every checkout and data directory on the machine."""
    explicit = os.environ.get("CHAT_ENGINES_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "chat-events" / "engines"


def pom_text(name: str) -> str:
    return resources.files("chat_events.engines").joinpath("poms", f"{name}.xml").read_text(encoding="utf-8")


def cache_folder(cache_dir: Path, name: str) -> Path:
    digest = hashlib.sha256(pom_text(name).encode()).hexdigest()[:12]
    return cache_dir / f"{name}-{digest}"


def is_cached(cache_dir: Path, name: str) -> bool:
    return (cache_folder(cache_dir, name) / "complete").is_file()


def classpath(cache_dir: Path, name: str) -> list[Path]:
    """The jars of engine ``name``, resolving them first if they are not cached."""
    folder = cache_folder(cache_dir, name)
    if not is_cached(cache_dir, name):
        resolve(cache_dir, name)
    jars = sorted((folder / "lib").glob("*.jar"))
    if not jars:
        raise EngineUnavailableError(f"the {name} cache at {folder} holds no jars; delete it and run again")
    return jars


def resolve(cache_dir: Path, name: str) -> Path:
    """Run ``mvn dependency:copy-dependencies`` on the engine's POM into the cache."""
    mvn = find_maven()
    folder = cache_folder(cache_dir, name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
    try:
        (work / "pom.xml").write_text(pom_text(name), encoding="utf-8")
        command = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(work / "pom.xml"), "dependency:copy-dependencies"]
        command += [f"-DoutputDirectory={work / 'lib'}", "-DincludeScope=runtime"]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, check=False, cwd=work
            )
        except subprocess.TimeoutExpired:
            raise EngineUnavailableError(f"resolving {name} with Maven took over {RESOLVE_TIMEOUT_S}s") from None
        if done.returncode != 0:
            last = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line][:1]
            detail = last[0].strip() if last else f"mvn exited with {done.returncode}"
            raise EngineUnavailableError(f"{name} did not resolve from Maven: {detail}")
        (work / "complete").write_text("", encoding="utf-8")
        if folder.exists():  # another run filled it meanwhile
            return folder
        work.rename(folder)
        return folder
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
