"""Fixtures for the image builder's tests: real .deb files made with dpkg-deb, a site-packages
folder laid out the way pip installs a wheel (dist-info with METADATA, WHEEL and RECORD), a
repository root with a recipe and gpus.csv, bin dirs of host ELF binaries, and lock files that
pin all of it. Nothing here needs the network.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_IMAGE = os.path.join(HERE, "build_image.py")
sys.path.insert(0, HERE)

import debs  # noqa: E402
import lock as lockmod  # noqa: E402

LIBDIR = "/lib/x86_64-linux-gnu"


def slurp(path: str, mode: str = "r"):
    with open(path, mode) as f:
        return f.read()


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_deb(out_dir: str, package: str, version: str, files: dict, symlinks: dict = None,
             arch: str = "amd64") -> str:
    """files: image path -> host path or bytes. Builds with dpkg-deb (root-owned entries)."""
    root = tempfile.mkdtemp(dir=out_dir, prefix=f"{package}-root-")
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\n"
                f"Maintainer: test <test@example.invalid>\nDescription: test fixture\n")
    for dest, src in files.items():
        p = os.path.join(root, dest.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(src, bytes):
            with open(p, "wb") as f:
                f.write(src)
            os.chmod(p, 0o644)
        else:
            shutil.copyfile(src, p)
            os.chmod(p, 0o755)
    for dest, target in (symlinks or {}).items():
        p = os.path.join(root, dest.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.symlink(target, p)
    deb = os.path.join(out_dir, f"{package}_{version}_{arch}.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb], check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, SOURCE_DATE_EPOCH="1"))
    shutil.rmtree(root)
    return deb


def deb_entry(deb: str, package: str, version: str, arch: str = "amd64") -> dict:
    return {"package": package, "version": version, "architecture": arch,
            "filename": f"pool/test/{os.path.basename(deb)}", "sha256": sha256(deb),
            "size": os.path.getsize(deb), "reason": "test"}


def make_dist(site: str, name: str, version: str, files: dict) -> dict:
    """Installs a fake wheel the way pip does: files (path in site-packages -> host file) plus
    NAME-VERSION.dist-info/{METADATA,WHEEL,RECORD}. Returns the lock's wheel entry."""
    di = os.path.join(site, f"{name}-{version}.dist-info")
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA test wheel.\n")
    with open(os.path.join(di, "WHEEL"), "w") as f:
        f.write("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_28_x86_64\n")
    rows, entries = [], []
    for rel, src in sorted(files.items()):
        p = os.path.join(site, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copyfile(src, p)
        digest = hashlib.sha256(slurp(p, "rb")).digest()
        rows.append(f"{rel},sha256={base64.urlsafe_b64encode(digest).decode().rstrip('=')},{os.path.getsize(p)}")
        entries.append({"path": rel, "sha256": digest.hex(), "size": os.path.getsize(p)})
    rows.append(f"{name}-{version}.dist-info/RECORD,,")
    with open(os.path.join(di, "RECORD"), "w") as f:
        f.write("\n".join(rows) + "\n")
    return {"distribution": name, "version": version, "wheel": f"{name}-{version}-cp311-cp311-manylinux_2_28_x86_64.whl",
            "wheel_sha256": "0" * 64, "files": entries}


def make_driver_binary(tmp: str, bin_dir: str) -> None:
    """bin_dir/needs-driver: a program that needs libcuda.so.1, as a CUDA program linked against
    the driver does (the library is built in tmp, never put in an image)."""
    src = os.path.join(tmp, "drv")
    os.makedirs(src)
    with open(os.path.join(src, "cuda.c"), "w") as f:
        f.write("int cuInit(unsigned f) { return 0; }\n")
    with open(os.path.join(src, "main.c"), "w") as f:
        f.write("int cuInit(unsigned f);\nint main(void) { return cuInit(0); }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", f"{src}/libcuda.so",
                    f"{src}/cuda.c"], check=True)
    subprocess.run(["cc", "-o", os.path.join(bin_dir, "needs-driver"), f"{src}/main.c", f"-L{src}", "-lcuda"],
                   check=True)


class Fixture:
    """A small but complete image: a libc deb (the host's libc and loader), a CA deb, a wheel
    holding libz, /bin/true as `cf`, one recipe and gpus.csv."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.debs_dir = os.path.join(tmp, "debs-src")
        self.cache = os.path.join(tmp, "cache")
        self.site = os.path.join(tmp, "site-packages")
        self.repo = os.path.join(tmp, "repo")
        self.bin = os.path.join(tmp, "bin")
        for d in (self.debs_dir, self.cache, self.site, self.bin):
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.join(self.repo, "convforever", "train", "recipes"))
        os.makedirs(os.path.join(self.repo, "convforever", "plan"))
        os.makedirs(os.path.join(self.repo, "convforever", "caption", "data"))
        with open(os.path.join(self.repo, "convforever", "caption", "data", "categories.txt"), "w") as f:
            f.write("cat\ndog\n")
        with open(os.path.join(self.repo, "convforever", "train", "recipes", "tiny.flags"), "w") as f:
            f.write("--model=simple_cnn\n")
        with open(os.path.join(self.repo, "convforever", "plan", "gpus.csv"), "w") as f:
            f.write("name,memory_gib\nH100,80\n")
        shutil.copyfile("/bin/true", os.path.join(self.bin, "cf"))
        os.chmod(os.path.join(self.bin, "cf"), 0o755)
        libc = make_deb(self.debs_dir, "cf-test-libc", "1.0-1", {
            f"{LIBDIR}/libc.so.6": f"{LIBDIR}/libc.so.6",
            f"{LIBDIR}/ld-linux-x86-64.so.2": f"{LIBDIR}/ld-linux-x86-64.so.2",
            "/usr/share/doc/cf-test-libc/copyright": b"test copyright\n",
            "/usr/share/doc/cf-test-libc/changelog.gz": b"dropped\n",
            "/usr/share/man/man1/x.1": b"dropped\n",
        }, symlinks={"/lib64/ld-linux-x86-64.so.2": f"{LIBDIR}/ld-linux-x86-64.so.2"})
        ca = make_deb(self.debs_dir, "cf-test-ca", "2.0", {
            "/usr/share/ca-certificates/mozilla/B.crt": b"-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n",
            "/usr/share/ca-certificates/mozilla/A.crt": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        }, arch="all")
        busybox = make_deb(self.debs_dir, "cf-test-busybox", "1", {"/bin/busybox": "/bin/true"})
        self.lock = {
            "_regenerate": "test fixture", "format": lockmod.FORMAT, "flavor": "cpu", "host_provided": [],
            "debian": [deb_entry(libc, "cf-test-libc", "1.0-1"), deb_entry(ca, "cf-test-ca", "2.0", "all")],
            "debian_debug": [deb_entry(busybox, "cf-test-busybox", "1")], "alternatives": [],
            "wheels": [make_dist(self.site, "fakewheel", "1.0", {"fakewheel/lib/libz.so.1": f"{LIBDIR}/libz.so.1"})],
        }
        # The cache holds the fixture debs under the names `build` looks for, so nothing is fetched.
        for e in self.lock["debian"] + self.lock["debian_debug"]:
            p = debs.DebPin(e["package"], e["version"], e["architecture"], e["filename"], e["sha256"], e["size"])
            src = os.path.join(self.debs_dir, f"{e['package']}_{e['version']}_{e['architecture']}.deb")
            shutil.copyfile(src, os.path.join(self.cache, debs.cache_name(p)))
        self.lock_path = os.path.join(tmp, "lock.json")
        self.write_lock()

    def write_lock(self, lock: dict = None, flavor: str = None) -> str:
        lock = lock or self.lock
        if flavor:
            lock = dict(lock, flavor=flavor)
        with open(self.lock_path, "w") as f:
            f.write(lockmod.dumps(lock))
        return self.lock_path

    def build(self, out: str, *extra: str, epoch: str = "1700000000", flavor: str = "cpu"):
        cmd = [sys.executable, BUILD_IMAGE, "build", "--flavor", flavor, "--bin-dir", self.bin,
               "--lock", self.lock_path, "--out", out, "--repo-root", self.repo, "--site-packages", self.site,
               "--cache-dir", self.cache, *extra]
        env = dict(os.environ, SOURCE_DATE_EPOCH=epoch)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class TestCase(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.tmp = tempfile.mkdtemp(dir=base)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.fx = Fixture(self.tmp)

    def build_ok(self, out: str, *extra: str, **kw):
        r = self.fx.build(out, *extra, **kw)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def build_fails(self, *extra: str, **kw) -> str:
        r = self.fx.build(os.path.join(self.tmp, "out-fail"), *extra, **kw)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stderr
