"""Assembles an image flavor from its lock: the Debian packages and /etc files (layer 1), the
wheel libraries (layer 2), our binaries and the files they read by relative path (layer 3); checks the tree and
writes the OCI layout and archive.

Every input is checked against the lock before it is used: a .deb by its sha256, a wheel file by
its sha256 (and its distribution's installed version). The bin dir is not pinned (it changes
with every commit); the completeness check covers it.
"""

import dataclasses
import datetime
import os
import posixpath
import shutil
from typing import Dict, List, Tuple

import debs
import lock as lockmod
import oci
import rootfs
import wheels

PREFIX = "/opt/convforever"
DROPPED_SHARE = ("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/lintian",
                 "/usr/share/locale")
USER_DIRS = ("/data", "/runs", "/cache/huggingface", "/home/cf")
UID = GID = 1000


class BuildError(Exception):
    pass


@dataclasses.dataclass
class Options:
    flavor: str
    bin_dir: str
    lock_path: str
    out_dir: str
    repo_root: str
    site_packages: str
    cache_dir: str
    tag: str = ""
    debug: bool = False
    extra_files: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    source_date_epoch: int = 0
    revision: str = "unknown"
    gzip_level: int = oci.GZIP_LEVEL


@dataclasses.dataclass
class Result:
    manifest_digest: str
    layers: List[oci.Layer]
    archive: str


def _kept(path: str, package: str) -> bool:
    for d in DROPPED_SHARE:
        if path == d or path.startswith(d + "/"):
            return path in (f"/usr/share/doc/{package}", f"/usr/share/doc/{package}/copyright",
                            "/usr/share/doc")
    return True


def add_deb(fs: rootfs.Rootfs, deb_path: str, pin: debs.DebPin, layer: int) -> None:
    origin = f"deb {pin.package}={pin.version}"
    for m, data in debs.members(deb_path):
        path = rootfs.norm(m.name)
        if path == "/" or not _kept(path, pin.package):
            continue
        mode = m.mode & 0o7777
        if m.isdir():
            fs.dir(path, layer, origin, mode=mode)
        elif m.issym():
            fs.symlink(path, m.linkname, layer, origin)
        elif m.islnk():
            fs.add(rootfs.Entry(path, rootfs.HARDLINK, layer, origin, mode=mode, link=rootfs.norm(m.linkname)))
        elif m.isreg():
            fs.file(path, layer, origin, data=data, mode=mode)
        else:
            raise BuildError(f"{origin}: {m.name} is a special file (type {m.type!r}); images hold none")


def add_etc(fs: rootfs.Rootfs, layer: int) -> None:
    o = "image /etc"
    fs.file("/etc/passwd", layer, o, data=(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"cf:x:{UID}:{GID}:convforever:/home/cf:/usr/sbin/nologin\n").encode())
    fs.file("/etc/group", layer, o, data=f"root:x:0:\ncf:x:{GID}:\n".encode())
    fs.file("/etc/nsswitch.conf", layer, o, data=(
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
        "protocols: files\nservices: files\n").encode())
    # What ca-certificates' postinst would generate: every Mozilla certificate, in sorted order.
    certs = sorted(p for p, e in fs.entries.items()
                   if p.startswith("/usr/share/ca-certificates/mozilla/") and p.endswith(".crt") and e.kind == rootfs.FILE)
    if not certs:
        raise BuildError("no /usr/share/ca-certificates/mozilla/*.crt in the image: is ca-certificates in the lock?")
    bundle = b"".join(fs.entries[p].read().rstrip(b"\n") + b"\n" for p in certs)
    fs.file("/etc/ssl/certs/ca-certificates.crt", layer, o, data=bundle)
    fs.dir("/tmp", layer, "image dirs", mode=0o1777)
    fs.dir("/root", layer, "image dirs", mode=0o700)
    for d in USER_DIRS:
        fs.dir(d, layer, "image dirs", mode=0o755, uid=UID, gid=GID)


def add_wheels(fs: rootfs.Rootfs, lock: Dict, site_packages: str, layer: int) -> None:
    sp = wheels.SitePackages(site_packages)
    for w in lock["wheels"]:
        name = w["distribution"]
        try:
            dist = sp.dist(name)
        except wheels.WheelError as e:
            raise BuildError(f"wheel {name}=={w['version']} from the lock: {e}") from e
        if dist.version != w["version"]:
            raise BuildError(f"wheel {name}: the lock pins version {w['version']}, {site_packages} has"
                             f" {dist.version}")
        for f in w["files"]:
            src = os.path.join(site_packages, f["path"])
            where = f"file {f['path']} of wheel {name}=={w['version']}"
            if not os.path.isfile(src):
                raise BuildError(f"{where} is missing from {site_packages} (expected sha256 {f['sha256']})")
            actual = wheels.sha256_file(src)
            if actual != f["sha256"]:
                raise BuildError(f"{where}: sha256 mismatch: expected {f['sha256']} (lock), actual {actual} ({src})")
            fs.file(f"{PREFIX}/lib/{posixpath.basename(f['path'])}", layer, f"wheel {name}", src=src, mode=0o755)


def add_ours(fs: rootfs.Rootfs, o: Options, layer: int) -> None:
    for p in lockmod.bin_files(o.bin_dir):
        fs.file(f"{PREFIX}/bin/{os.path.basename(p)}", layer, f"bin {p}", src=p, mode=0o755)
    # The working directory (PREFIX) is laid out like a checkout's root for the files the programs
    # read by relative path, so their defaults hold in the image: the recipes, the 50 categories
    # (classify's default, convforever_depth's class list), the estimator's GPU table. `runs` is a
    # link to the /runs volume, where the default --run_dir (runs/<recipe>) then lands.
    for folder, pattern in (("convforever/train/recipes", ".flags"), ("convforever/caption/data", ".txt")):
        src_dir = os.path.join(o.repo_root, folder)
        if not os.path.isdir(src_dir):
            raise BuildError(f"no folder {src_dir} (is --repo-root the repository?)")
        for n in sorted(os.listdir(src_dir)):
            if n.endswith(pattern):
                fs.file(f"{PREFIX}/{folder}/{n}", layer, f"{folder}/{n}", src=os.path.join(src_dir, n))
    gpus = os.path.join(o.repo_root, "convforever", "plan", "gpus.csv")
    if not os.path.isfile(gpus):
        raise BuildError(f"no {gpus} (is --repo-root the repository?)")
    fs.file(f"{PREFIX}/convforever/plan/gpus.csv", layer, "convforever/plan/gpus.csv", src=gpus)
    fs.symlink(f"{PREFIX}/runs", "/runs", layer, "the run directories' volume")
    for src, dest in o.extra_files:
        if not os.path.isfile(src):
            raise BuildError(f"--extra-file {src}:{dest}: {src} is not a file")
        mode = 0o755 if os.access(src, os.X_OK) else 0o644
        fs.file(dest, layer, f"--extra-file {src}", src=src, mode=mode)


def config(o: Options, layers: List[oci.Layer], tag: str) -> Dict:
    created = datetime.datetime.fromtimestamp(o.source_date_epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = [f"PATH={PREFIX}/bin", f"LD_LIBRARY_PATH={PREFIX}/lib", "HF_HOME=/cache/huggingface"]
    if o.flavor == "cuda":
        env += ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]
    what = ["Debian packages and /etc", "wheel libraries", "convforever binaries, recipes, categories, GPU table"]
    return {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "Env": env,
            "Entrypoint": [f"{PREFIX}/bin/cf"],
            "Cmd": ["help"],
            "WorkingDir": PREFIX,
            "Volumes": {"/data": {}, "/runs": {}, "/cache/huggingface": {}},
            "Labels": {
                "org.opencontainers.image.title": tag,
                "org.opencontainers.image.source": "containers/image/build_image.py",
                "org.opencontainers.image.revision": o.revision,
                "org.opencontainers.image.created": created,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": created, "created_by": f"build_image.py: {w}"} for w in what],
    }


def build(o: Options, log=print) -> Result:
    lock = lockmod.load(o.lock_path, o.flavor)
    tag = o.tag or f"convforever:{o.flavor}"
    if o.debug and not tag.endswith("-debug"):
        tag += "-debug"
    fs = rootfs.Rootfs()
    pins = lockmod.deb_pins(lock["debian"]) + (lockmod.deb_pins(lock["debian_debug"]) if o.debug else [])
    for p in pins:
        path = debs.fetch(p, o.cache_dir)
        debs.verify(p, path)
        add_deb(fs, path, p, 1)
    for alt in lock["alternatives"]:
        origin = f"alternative {alt['link']} of deb {alt['package']}"
        if fs.resolve(alt["target"]) is None:
            raise BuildError(f"{origin}: its target {alt['target']} is in no package of the lock")
        fs.symlink(alt["link"], alt["target"], 1, origin)
    if o.debug:
        fs.symlink("/bin/sh", "busybox", 1, "image --debug")
    add_etc(fs, 1)
    add_wheels(fs, lock, o.site_packages, 2)
    add_ours(fs, o, 3)

    rootfs.check_no_shell(fs, allowed=("/bin/sh", "/bin/busybox") if o.debug else ())
    n = rootfs.check_complete(fs, [f"{PREFIX}/lib"], o.flavor)
    log(f"checked {n} ELF files: every DT_NEEDED resolves in the image"
        + (f" (host-provided: {', '.join(lock.get('host_provided', []))})" if lock.get("host_provided") else ""))

    layout = os.path.join(o.out_dir, "oci")
    if os.path.exists(layout):
        shutil.rmtree(layout)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    layers = [oci.write_layer(fs.layer_entries(i), blobs, o.source_date_epoch, o.gzip_level) for i in (1, 2, 3)]
    man = oci.write_layout(layout, layers, config(o, layers, tag), tag)
    suffix = "-debug" if o.debug else ""
    archive = os.path.join(o.out_dir, f"{o.flavor}{suffix}.oci.tar")
    oci.archive(layout, archive, o.source_date_epoch)
    with open(os.path.join(o.out_dir, "digest.txt"), "w") as f:
        f.write(man.digest + "\n")
    return Result(man.digest, layers, archive)
