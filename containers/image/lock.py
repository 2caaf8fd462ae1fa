"""The image lock: every input of an image flavor, resolved once on a build machine and pinned.

`make_lock` walks the shared-library closure of the binaries in a bin dir (closure.py); each
library found in a wheel folder of the venv becomes a wheel file pinned by the sha256 pip wrote in
RECORD (checked against the installed file), under the wheel's version and its sha256 pinned in
tools/python/requirements.lock; each library found in a system folder becomes the Debian package
that owns it, pinned by version and the sha256 of its .deb on the mirror. Every ELF of such a
package is walked too, so the image's completeness check sees nothing the lock did not. A library
reached through an update-alternatives link (libblas.so.3) records that link ("alternatives"):
maintainer scripts never run in the image, so the builder makes it. A fixed
base list (BASE_PACKAGES) is always in; DEBUG_PACKAGES are pinned for --debug images only.
The JSON is deterministic: sorted keys, 2-space indent, trailing newline.
"""

import json
import os
from typing import Dict, List

import closure
import debs
import elf
import wheels

FORMAT = 1
BASE_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6", "ca-certificates", "dataset-fashion-mnist")
DEBUG_PACKAGES = ("busybox-static",)
IMAGE_LIB_DIR = "/opt/convforever/lib"


class LockError(Exception):
    pass


def wheel_lib_dirs(site_packages: str) -> List[str]:
    out = [os.path.join(site_packages, "torch", "lib")]
    nv = os.path.join(site_packages, "nvidia")
    if os.path.isdir(nv):
        out += [os.path.join(nv, d, "lib") for d in sorted(os.listdir(nv))
                if os.path.isdir(os.path.join(nv, d, "lib"))]
    out.append(os.path.join(site_packages, "pyarrow"))
    return [d for d in out if os.path.isdir(d)]


def bin_files(bin_dir: str) -> List[str]:
    if not os.path.isdir(bin_dir):
        raise LockError(f"--bin-dir {bin_dir} is not a folder")
    out = [os.path.join(bin_dir, n) for n in sorted(os.listdir(bin_dir))
           if os.path.isfile(os.path.join(bin_dir, n))]
    if not out:
        raise LockError(f"--bin-dir {bin_dir} has no files")
    return out


def _deb_entry(p: debs.DebPin, reason: str) -> Dict:
    return {"package": p.package, "version": p.version, "architecture": p.architecture,
            "filename": p.filename, "sha256": p.sha256, "size": p.size, "reason": reason}


def make_lock(flavor: str, bin_dir: str, site_packages: str, requirements_lock: str,
              index_json: str = wheels.DEFAULT_INDEX_JSON, regenerate: str = "") -> Dict:
    if flavor not in closure.HOST_PROVIDED:
        raise LockError(f"unknown --flavor {flavor} (want one of {', '.join(sorted(closure.HOST_PROVIDED))})")
    r = closure.Resolver(flavor, wheel_lib_dirs(site_packages))
    r.add(bin_files(bin_dir))
    packages: Dict[str, str] = {}  # "pkg:arch" -> reason
    alternatives: Dict[str, Dict] = {}  # link -> the file update-alternatives would point it at
    while True:
        owned = debs.owners(r.closure.system_files)
        new = sorted({p for p, _ in owned.values() if p not in packages})
        for path, (pkg, recorded) in sorted(owned.items()):
            packages.setdefault(pkg, f"provides {path}")
            if debs.via_alternatives(path):
                alternatives[path] = {"link": path, "target": recorded, "package": pkg.split(":")[0]}
        if not new:
            break
        for pkg in new:  # every ELF the package ships goes into the image, so walk them all
            elfs = [f for f in debs.files_of(pkg) if os.path.isfile(f) and not os.path.islink(f)
                    and _is_elf(f)]
            r.add(elfs, system=True)
    for pkg in BASE_PACKAGES:
        if not any(k.split(":")[0] == pkg for k in packages):
            packages[pkg] = "base"

    pins = debs.pin_all(list(packages) + list(DEBUG_PACKAGES))
    deb_pins = {pins[k].package: _deb_entry(pins[k], reason) for k, reason in packages.items()}
    debug_pins = [_deb_entry(pins[k], "--debug") for k in DEBUG_PACKAGES]

    sp = wheels.SitePackages(site_packages)
    wheel_pins = wheels.read_pins(requirements_lock)
    by_dist: Dict[str, Dict] = {}
    dests: Dict[str, str] = {}
    for soname, path in sorted(r.closure.wheel_libs.items()):
        dist, rel, sha = sp.owner(path)
        actual = wheels.sha256_file(path)
        if not sha or actual != sha:
            raise LockError(f"{path}: sha256 {actual} differs from {sha or 'nothing'} in {dist.dist_info}/RECORD"
                            f" (reinstall wheel {dist.name} with `tools/cf setup`)")
        dest = os.path.basename(rel)
        if dest in dests and dests[dest] != rel:
            raise LockError(f"{IMAGE_LIB_DIR}/{dest} would come from both {dests[dest]} and {rel}")
        dests[dest] = rel
        if dist.name not in by_dist:
            filename, wheel_sha = wheels.pinned_wheel(dist, wheel_pins, requirements_lock, index_json)
            by_dist[dist.name] = {"distribution": dist.name, "version": dist.version, "wheel": filename,
                                  "wheel_sha256": wheel_sha, "files": []}
        by_dist[dist.name]["files"].append({"path": rel, "sha256": sha, "size": os.path.getsize(path)})
    for w in by_dist.values():
        w["files"].sort(key=lambda f: f["path"])

    return {
        "_regenerate": regenerate or (
            f"Generated; do not edit. Regenerate with: containers/image/build_image.py lock --flavor {flavor}"
            f" --bin-dir DIR --out containers/lock/{flavor}.json (DIR: the image's binaries, built for"
            f" {flavor}; see containers/image/README.md)"),
        "format": FORMAT,
        "flavor": flavor,
        "host_provided": sorted(r.closure.host_provided),
        "debian": [deb_pins[k] for k in sorted(deb_pins)],
        "alternatives": [alternatives[k] for k in sorted(alternatives)],
        "debian_debug": debug_pins,
        "wheels": [by_dist[k] for k in sorted(by_dist, key=wheels.normalize)],
    }


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return elf.is_elf_header(f.read(4))
    except OSError:
        return False


def dumps(lock: Dict) -> str:
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


def load(path: str, flavor: str) -> Dict:
    try:
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
    except (OSError, ValueError) as e:
        raise LockError(f"cannot read lock {path}: {e}") from e
    if lock.get("format") != FORMAT:
        raise LockError(f"lock {path}: format {lock.get('format')}, this builder reads format {FORMAT}")
    if lock.get("flavor") != flavor:
        raise LockError(f"lock {path} is for flavor {lock.get('flavor')}, not --flavor {flavor}")
    for key in ("debian", "debian_debug", "alternatives", "wheels"):
        if not isinstance(lock.get(key), list):
            raise LockError(f"lock {path}: no list '{key}'")
    return lock


def deb_pins(entries: List[Dict]) -> List[debs.DebPin]:
    return [debs.DebPin(e["package"], e["version"], e["architecture"], e["filename"], e["sha256"],
                        e.get("size", 0)) for e in entries]
