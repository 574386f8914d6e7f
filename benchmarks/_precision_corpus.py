"""The pinned corpus of the review precision benchmark: widely used packages at fixed versions,
fetched from the package registries into a cache (never committed).

Python: sdists from PyPI (found through its simple API, sha256 checked); JavaScript and
TypeScript: the published npm tarballs (`npm pack`); Go: Debian's `golang-*-dev` source packages
(`apt-get download`, unpacked with `dpkg-deb -x`). The cache is `$STAGECODER_BENCH_CACHE`, else
`~/.cache/stagecoder-bench`; each package lands in `<cache>/<name>-<version>/` and is fetched
once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Package:
    """One pinned package: registry, name, version, and the subdirectory that holds its code."""

    registry: str  # "pypi", "npm" or "debian"
    name: str
    version: str
    language: str  # the language it was chosen for (files of every language are reviewed)
    subdir: str = ""  # inside the unpacked archive; "" = all of it

    @property
    def key(self) -> str:
        """The directory name in the cache, and the `package` field of a label."""
        safe = self.name.replace("/", "__").replace("@", "")
        return f"{safe}-{self.version}"


CORPUS: tuple[Package, ...] = (
    Package("pypi", "attrs", "23.2.0", "python"),
    Package("pypi", "Jinja2", "3.1.4", "python"),
    Package("pypi", "tqdm", "4.66.4", "python"),
    Package("pypi", "packaging", "24.1", "python"),
    Package("pypi", "pyparsing", "3.1.2", "python"),
    Package("pypi", "python-dateutil", "2.9.0.post0", "python"),
    Package("pypi", "Markdown", "3.6", "python"),
    Package("pypi", "docutils", "0.21.2", "python"),
    Package("npm", "express", "4.19.2", "javascript"),
    Package("npm", "ws", "8.17.0", "javascript"),
    Package("npm", "semver", "7.6.2", "javascript"),
    Package("npm", "qs", "6.12.1", "javascript"),
    Package("npm", "async", "3.2.5", "javascript"),
    Package("npm", "commander", "12.1.0", "javascript"),
    Package("npm", "moment", "2.30.1", "javascript"),
    Package("npm", "jquery", "3.7.1", "javascript"),
    Package("npm", "handlebars", "4.7.8", "javascript"),
    Package("npm", "immer", "10.1.1", "typescript", "src"),
    Package("npm", "mobx", "6.12.3", "typescript", "src"),
    Package("npm", "rxjs", "7.8.1", "typescript", "src"),
    Package("npm", "@trpc/server", "10.45.2", "typescript", "src"),
    Package("npm", "@reduxjs/toolkit", "2.2.5", "typescript", "src"),
    Package("debian", "golang-github-sirupsen-logrus-dev", "1.9.0-1", "go"),
    Package("debian", "golang-github-gorilla-mux-dev", "1.8.0-1", "go"),
    Package("debian", "golang-github-burntsushi-toml-dev", "1.2.0-2", "go"),
    Package("debian", "golang-github-google-go-cmp-dev", "0.5.9-1", "go"),
    Package("debian", "golang-github-stretchr-testify-dev", "1.8.1-1", "go"),
    Package("debian", "golang-gopkg-yaml.v3-dev", "3.0.1-3", "go"),
    Package("debian", "golang-github-urfave-cli-dev", "1.22.9-2", "go"),
)


class FetchError(Exception):
    """A package could not be fetched (offline, registry refused): the message says which."""


def cache_dir() -> Path:
    """Where the corpus lives."""
    env = os.environ.get("STAGECODER_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "stagecoder-bench"


def package_dir(package: Package, cache: Path | None = None) -> Path:
    """The unpacked code of a package in the cache (it may not exist yet)."""
    return (cache or cache_dir()) / package.key


def ensure(package: Package, cache: Path | None = None) -> Path:
    """The package's code directory, fetched and unpacked first if it is not in the cache."""
    target = package_dir(package, cache)
    if (target / ".complete").is_file():
        return _code_root(package, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        work = Path(scratch)
        archive = _download(package, work / "dl")
        unpacked = work / "unpacked"
        _unpack(archive, unpacked)
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    (target / ".complete").write_text(f"{package.registry} {package.name} {package.version}\n")
    return _code_root(package, target)


def _code_root(package: Package, target: Path) -> Path:
    roots = [p for p in target.iterdir() if p.is_dir()]
    base = roots[0] if package.registry != "debian" and len(roots) == 1 else target
    return base / package.subdir if package.subdir else base


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"{' '.join(cmd)}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]
        raise FetchError(f"{' '.join(cmd)}: {tail[0]}")


def _download(package: Package, into: Path) -> Path:
    into.mkdir(parents=True)
    spec = f"{package.name}@{package.version}"
    if package.registry == "pypi":
        _pypi_sdist(package, into)
    elif package.registry == "npm":
        _run(["npm", "pack", "--silent", spec], into)
    elif package.registry == "debian":
        _run(["apt-get", "download", f"{package.name}={package.version}"], into)
    else:
        raise FetchError(f"unknown registry {package.registry}")
    files = [p for p in into.iterdir() if p.is_file()]
    if len(files) != 1:
        raise FetchError(f"{spec}: expected one archive, got {[p.name for p in files]}")
    return files[0]


def _pypi_sdist(package: Package, into: Path) -> None:
    """The release's sdist, found through PyPI's simple API (JSON form), sha256 checked."""
    index = f"https://pypi.org/simple/{package.name.lower()}/"
    spec = f"{package.name}=={package.version}"
    request = urllib.request.Request(index,
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
        prefix = f"{package.name}-{package.version}".lower().replace("-", "_")
        sdists = [f for f in files if f["filename"].endswith((".tar.gz", ".zip"))
                  and f["filename"].lower().replace("-", "_").rsplit(".", 2)[0]
                  .removesuffix(".tar") == prefix]
        if not sdists:
            raise FetchError(f"{spec}: no sdist on PyPI")
        wanted = sdists[0]
        with urllib.request.urlopen(wanted["url"], timeout=120) as response:
            data = response.read()
    except (OSError, ValueError, KeyError) as exc:
        raise FetchError(f"{spec}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != wanted["hashes"]["sha256"]:
        raise FetchError(f"{spec}: sha256 mismatch")
    (into / wanted["filename"]).write_bytes(data)


def _unpack(archive: Path, into: Path) -> None:
    into.mkdir(parents=True)
    name = archive.name
    if name.endswith(".deb"):
        _run(["dpkg-deb", "-x", str(archive), str(into)], into)
        return
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        tf.extractall(into, filter="data")
