"""Debian packages as image inputs: which installed package owns a file (dpkg-query -S), the
pool file and sha256 of PKG=VERSION (apt-cache show), fetching the .deb into a cache
(apt-get download) with its sha256 checked against the lock, and reading its data tar
(dpkg-deb --fsys-tarfile) as a stream of tar members.
"""

import dataclasses
import os
import subprocess
import tarfile
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import wheels


class DebError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class DebPin:
    package: str
    version: str
    architecture: str
    filename: str  # pool path on the mirror
    sha256: str
    size: int

    def ref(self) -> str:
        return f"{self.package}:{self.architecture}={self.version}"


def _run(cmd: List[str], what: str) -> str:
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise DebError(f"{what}: `{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p.stdout


def via_alternatives(path: str) -> bool:
    """Whether a symlink on the way from path to its file is an update-alternatives link: a
    maintainer script made it, so it is in no package's data tar."""
    p, hops = path, 0
    while os.path.islink(p) and hops < 40:
        target = os.readlink(p)
        p = os.path.normpath(os.path.join(os.path.dirname(p), target))
        if p.startswith("/etc/alternatives/"):
            return True
        hops += 1
    return False


def _aliases(path: str) -> List[str]:
    """The names dpkg may have recorded for a file: merged /usr makes /lib/x the same as /usr/lib/x."""
    out = [path, os.path.realpath(path)]
    for p in list(out):
        for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/"), ("/usr/lib64/", "/lib64/"),
                     ("/lib64/", "/usr/lib64/")):
            if p.startswith(a):
                out.append(b + p[len(a):])
    # a symlinked folder on the way (/lib64 -> usr/lib64): dpkg records the unresolved path
    d = os.path.realpath(os.path.dirname(path))
    out.append(os.path.join(d, os.path.basename(path)))
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def owners(paths: Iterable[str]) -> Dict[str, Tuple[str, str]]:
    """host path -> ("package:arch" (or "package" for Architecture: all) owning it, the path as
    dpkg recorded it)."""
    paths = sorted(set(paths))
    candidates: Dict[str, List[str]] = {}
    for p in paths:
        for a in _aliases(p):
            candidates.setdefault(a, []).append(p)
    proc = subprocess.run(["dpkg-query", "-S", *candidates], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    found: Dict[str, Tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        pkgs, sep, p = line.partition(": ")
        if not sep or p not in candidates or pkgs.startswith("diversion "):
            continue
        for original in candidates[p]:
            found.setdefault(original, (pkgs.split(", ")[0], p))
    missing = [p for p in paths if p not in found]
    if missing:
        raise DebError("no installed Debian package owns " + ", ".join(missing) +
                       " (dpkg-query -S); install it from the Debian mirror or drop what needs it")
    return found


def _stanzas(text: str) -> List[Dict[str, str]]:
    out = []
    for stanza in text.split("\n\n"):
        fields: Dict[str, str] = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(": ")
            if sep and not line.startswith(" "):
                fields[key] = value.strip()
        if fields:
            out.append(fields)
    return out


def _mirror_stanzas(specs: List[str]) -> Dict[Tuple[str, str, str], Dict[str, str]]:
    """(package, version, arch) -> the mirror's stanza, for every `pkg[:arch]=version` apt knows.
    One apt-cache call for all (each call reads the whole index: seconds); unknown ones are left out."""
    if not specs:
        return {}
    p = subprocess.run(["apt-cache", "show", *specs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return {(f["Package"], f["Version"], f.get("Architecture", "")): f for f in _stanzas(p.stdout)
            if "Filename" in f and "SHA256" in f and "Package" in f and "Version" in f}


def _policy_candidates(names: List[str]) -> Dict[str, str]:
    out, current = {}, None
    text = _run(["apt-cache", "policy", *names], "apt-cache policy")
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1].split(":")[0]
        elif line.strip().startswith("Candidate:") and current:
            v = line.split(":", 1)[1].strip()
            if v and v != "(none)":
                out[current] = v
    return out


def pin_all(packages: List[str]) -> Dict[str, DebPin]:
    """"package[:arch]" -> its pin: the installed version if the mirror still has it, else the
    mirror's candidate (an installed version the mirror dropped, say a binNMU since, cannot be
    fetched). Errors name every package the mirror cannot provide."""
    names = sorted(set(packages))
    installed: Dict[str, Tuple[str, str]] = {}
    q = subprocess.run(["dpkg-query", "-W", "-f", "${binary:Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n",
                        *names], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in q.stdout.splitlines():
        bp, version, arch, status = (line.split("\t") + ["", "", ""])[:4]
        if status.startswith("ii"):
            installed[bp] = (version, arch)
            installed.setdefault(bp.split(":")[0], (version, arch))
    want = {n: installed[n] for n in names if n in installed}
    specs = [f"{n.split(':')[0]}:{a}={v}" if a != "all" else f"{n.split(':')[0]}={v}" for n, (v, a) in want.items()]
    found = _mirror_stanzas(specs)
    pins: Dict[str, DebPin] = {}
    for n, (v, a) in want.items():
        f = found.get((n.split(":")[0], v, a))
        if f:
            pins[n] = DebPin(f["Package"], v, a, f["Filename"], f["SHA256"], int(f.get("Size", "0")))
    rest = [n for n in names if n not in pins]
    if rest:
        cands = {n: c for n, c in _policy_candidates(rest).items()}  # keyed by bare name
        cands = {n: cands[n.split(":")[0]] for n in rest if n.split(":")[0] in cands}
        found = _mirror_stanzas([f"{n}={cands[n]}" for n in rest if n in cands])
        for n in rest:
            for (pkg, v, a), f in sorted(found.items()):
                if pkg == n.split(":")[0] and v == cands.get(n) and (":" not in n or a in (n.split(":")[1], "all")):
                    pins[n] = DebPin(pkg, v, a, f["Filename"], f["SHA256"], int(f.get("Size", "0")))
                    break
    missing = [n for n in names if n not in pins]
    if missing:
        raise DebError("the Debian mirror has no fetchable version of " + ", ".join(missing) +
                       " (apt-cache show/policy; run apt-get update?)")
    return pins


def files_of(package: str) -> List[str]:
    out = _run(["dpkg-query", "-L", package], f"files of {package}")
    return [l for l in out.splitlines() if l.startswith("/")]


def cache_name(p: DebPin) -> str:
    return f"{p.package}_{p.version.replace(':', '%3a')}_{p.architecture}.deb"


def fetch(p: DebPin, cache_dir: str) -> str:
    """Path of the verified .deb in cache_dir, downloaded with apt-get when not cached already."""
    os.makedirs(cache_dir, exist_ok=True)
    dest = os.path.join(cache_dir, cache_name(p))
    if os.path.exists(dest) and wheels.sha256_file(dest) == p.sha256:
        return dest
    spec = f"{p.package}:{p.architecture}={p.version}" if p.architecture != "all" else f"{p.package}={p.version}"
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        proc = subprocess.run(["apt-get", "download", "-q", spec], cwd=tmp, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        got = [n for n in os.listdir(tmp) if n.endswith(".deb")]
        if proc.returncode != 0 or len(got) != 1:
            raise DebError(f"package {p.package} version {p.version} ({p.architecture}): apt-get download failed"
                           f" (expected sha256 {p.sha256}): {proc.stderr.strip()[-400:]}")
        actual = wheels.sha256_file(os.path.join(tmp, got[0]))
        if actual != p.sha256:
            raise DebError(f"package {p.package} version {p.version} ({p.architecture}): sha256 mismatch:"
                           f" expected {p.sha256}, actual {actual}")
        os.replace(os.path.join(tmp, got[0]), dest)
    return dest


def verify(p: DebPin, path: str) -> None:
    actual = wheels.sha256_file(path)
    if actual != p.sha256:
        raise DebError(f"package {p.package} version {p.version} ({p.architecture}): sha256 mismatch:"
                       f" expected {p.sha256}, actual {actual} ({path})")


def members(deb_path: str) -> Iterator[Tuple[tarfile.TarInfo, Optional[bytes]]]:
    """(member, content for regular files) of the package's data tar, in archive order."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb_path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                data = tar.extractfile(m).read() if m.isreg() else None
                yield m, data
    finally:
        rest = proc.stdout.read()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise DebError(f"dpkg-deb --fsys-tarfile {deb_path} failed: {err.strip()[-400:]}")
