"""Installed wheels in a venv's site-packages: which distribution a file came from, the file's
sha256 as pip recorded it (RECORD), the distribution's version (METADATA), and the wheel's own
sha256 as pinned in tools/python/requirements.lock (picked among the pins by the wheel tag pip
installed, using the package index's file list (the PEP 691 JSON simple API): the lock pins every
platform's wheel).
"""

import base64
import csv
import dataclasses
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from typing import Dict, List, Tuple

DEFAULT_INDEX_JSON = "https://pypi.org/simple"  # PEP 691 JSON form of the simple API


class WheelError(Exception):
    pass


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass
class Dist:
    name: str  # as in METADATA
    version: str
    dist_info: str  # absolute path of the *.dist-info folder
    tags: List[str]  # from WHEEL
    files: Dict[str, Tuple[str, str]]  # realpath of an installed file -> (path in RECORD, sha256 hex)


def record_hash_to_hex(value: str) -> str:
    algo, _, b64 = value.partition("=")
    if algo != "sha256" or not b64:
        return ""
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()


def _headers(path: str) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                break  # the body (description) starts after the first blank line
            key, sep, value = line.partition(":")
            if sep and not key.startswith((" ", "\t")):
                out.setdefault(key.strip(), []).append(value.strip())
    return out


def read_dist(dist_info: str) -> Dist:
    meta = _headers(os.path.join(dist_info, "METADATA"))
    if "Name" not in meta or "Version" not in meta:
        raise WheelError(f"{dist_info}/METADATA has no Name or Version")
    tags = _headers(os.path.join(dist_info, "WHEEL")).get("Tag", []) if os.path.exists(
        os.path.join(dist_info, "WHEEL")) else []
    site = os.path.dirname(dist_info)
    files = {}
    record = os.path.join(dist_info, "RECORD")
    with open(record, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[1]:
                files[os.path.realpath(os.path.join(site, row[0]))] = (row[0], record_hash_to_hex(row[1]))
    return Dist(meta["Name"][0], meta["Version"][0], dist_info, tags, files)


class SitePackages:
    def __init__(self, path: str):
        self.path = path
        if not os.path.isdir(path):
            raise WheelError(f"site-packages {path} does not exist (run `tools/cf setup`)")
        self.dists: Dict[str, Dist] = {}
        for name in sorted(os.listdir(path)):
            if name.endswith(".dist-info"):
                d = read_dist(os.path.join(path, name))
                self.dists[normalize(d.name)] = d
        self._owner = {f: d for d in self.dists.values() for f in d.files}

    def owner(self, host_path: str) -> Tuple[Dist, str, str]:
        real = os.path.realpath(host_path)
        d = self._owner.get(real)
        if d is None:
            raise WheelError(f"{host_path} belongs to no installed distribution's RECORD in {self.path}")
        rel, sha = d.files[real]
        return d, rel, sha

    def dist(self, name: str) -> Dist:
        d = self.dists.get(normalize(name))
        if d is None:
            raise WheelError(f"wheel {name} is not installed in {self.path}")
        return d


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_pins(requirements_lock: str) -> Dict[str, Tuple[str, List[str]]]:
    """normalized name -> (version, [sha256...]) from a `--generate-hashes` requirements file."""
    pins: Dict[str, Tuple[str, List[str]]] = {}
    current = None
    with open(requirements_lock, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", s)
            if m and not line.startswith((" ", "\t")):
                current = normalize(m.group(1))
                pins[current] = (m.group(2), [])
            for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", s):
                if current is not None:
                    pins[current][1].append(h)
    return pins


def _wheel_tags(filename: str) -> List[str]:
    parts = filename[:-len(".whl")].split("-")
    if len(parts) < 5:
        return []
    py, abi, plat = parts[-3:]
    return [f"{a}-{b}-{c}" for a in py.split(".") for b in abi.split(".") for c in plat.split(".")]


def _wheel_version(filename: str) -> str:
    parts = filename.split("-")
    return parts[1] if len(parts) >= 5 else ""


def pinned_wheel(dist: Dist, pins: Dict[str, Tuple[str, List[str]]], requirements_lock: str,
                 index_json: str = DEFAULT_INDEX_JSON) -> Tuple[str, str]:
    """The (filename, sha256) of the wheel this dist was installed from, checked against the pins."""
    key = normalize(dist.name)
    if key not in pins:
        raise WheelError(f"wheel {dist.name} is not pinned in {requirements_lock}")
    version, hashes = pins[key]
    if version != dist.version:
        raise WheelError(f"wheel {dist.name}: installed version {dist.version}, {requirements_lock} pins {version}")
    url = f"{index_json.rstrip('/')}/{key}/"
    try:
        req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            listing = json.load(r)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise WheelError(f"wheel {dist.name}=={dist.version}: cannot read the index's file list {url}: {e}") from e
    installed = set(dist.tags)
    matches = [(u["filename"], u.get("hashes", {}).get("sha256", "")) for u in listing.get("files", [])
               if u.get("filename", "").endswith(".whl") and _wheel_version(u["filename"]) == dist.version
               and installed & set(_wheel_tags(u["filename"]))]
    if len(matches) != 1:
        raise WheelError(f"wheel {dist.name}=={dist.version}: {len(matches)} files on {url} match the installed"
                         f" tags {sorted(installed)} (want exactly 1)")
    filename, sha = matches[0]
    if sha not in hashes:
        raise WheelError(f"wheel {filename}: sha256 {sha} (from {url}) is not among the hashes pinned in"
                         f" {requirements_lock}")
    return filename, sha
