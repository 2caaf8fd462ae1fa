#!/usr/bin/env python3
"""Builds ConvForever's container images from scratch (no docker, no buildah), reproducibly.

  build_image.py lock  --flavor cpu|cuda --bin-dir DIR --out containers/lock/FLAVOR.json
  build_image.py build --flavor cpu|cuda --bin-dir DIR --lock containers/lock/FLAVOR.json --out OUTDIR
                       [--tag NAME:TAG] [--debug] [--extra-file SRC:DEST ...]

`lock` pins every input once (lock.py); `build` assembles the image from the lock, checking every
input against it (assemble.py), and writes OUTDIR/oci/ (an OCI layout), OUTDIR/FLAVOR.oci.tar
(an oci-archive) and OUTDIR/digest.txt. See containers/image/README.md.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import assemble  # noqa: E402
import closure  # noqa: E402
import debs  # noqa: E402
import elf  # noqa: E402
import lock  # noqa: E402
import rootfs  # noqa: E402
import wheels  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ERRORS = (assemble.BuildError, closure.ClosureError, debs.DebError, elf.ElfError, lock.LockError,
          rootfs.RootfsError, wheels.WheelError, OSError)


def _git(repo: str, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", repo, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _default_repo_root() -> str:
    return _git(HERE, "rev-parse", "--show-toplevel") or os.path.dirname(os.path.dirname(HERE))


def source_date_epoch(repo: str) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    ct = _git(repo, "log", "-1", "--format=%ct")
    return int(ct) if ct.isdigit() else 0


def parse(argv):
    ap = argparse.ArgumentParser(prog="build_image.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--flavor", required=True, choices=sorted(closure.HOST_PROVIDED))
    common.add_argument("--bin-dir", required=True, help="folder of the binaries that go to /opt/convforever/bin")
    common.add_argument("--repo-root", default=None, help="the repository (default: this checkout)")
    common.add_argument("--site-packages", default=None,
                        help="the venv's site-packages (default: REPO/.venv/lib/python3.11/site-packages)")
    lk = sub.add_parser("lock", parents=[common], help="resolve and pin every input")
    lk.add_argument("--out", required=True, help="the lock file to write")
    lk.add_argument("--requirements-lock", default=None, help="default: REPO/tools/python/requirements.lock")
    lk.add_argument("--index-json", default=wheels.DEFAULT_INDEX_JSON,
                    help="the package index's JSON API, to find which pinned wheel was installed")
    b = sub.add_parser("build", parents=[common], help="build the image from a lock")
    b.add_argument("--lock", required=True)
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--tag", default="")
    b.add_argument("--debug", action="store_true", help="add busybox as /bin/sh (tag suffix -debug)")
    b.add_argument("--extra-file", action="append", default=[], metavar="SRC:DEST")
    b.add_argument("--cache-dir", default=os.environ.get("CF_IMAGE_CACHE") or os.path.expanduser(
        "~/.cache/convforever/image-inputs/debs"), help=".deb cache (env CF_IMAGE_CACHE)")
    b.add_argument("--gzip-level", type=int, default=assemble.oci.GZIP_LEVEL)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    repo = os.path.abspath(a.repo_root or _default_repo_root())
    sp = a.site_packages or os.path.join(repo, ".venv", "lib", "python3.11", "site-packages")
    start = time.monotonic()
    try:
        if a.cmd == "lock":
            req = a.requirements_lock or os.path.join(repo, "tools", "python", "requirements.lock")
            data = lock.make_lock(a.flavor, a.bin_dir, sp, req, a.index_json)
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "w", encoding="utf-8") as f:
                f.write(lock.dumps(data))
            print(f"wrote {a.out}: {len(data['debian'])} Debian packages, {len(data['wheels'])} wheels"
                  f" ({sum(len(w['files']) for w in data['wheels'])} files)")
            return 0
        extra = []
        for spec in a.extra_file:
            src, sep, dest = spec.partition(":")
            if not sep or not dest.startswith("/"):
                print(f"error: --extra-file {spec}: want SRC:/absolute/dest", file=sys.stderr)
                return 2
            extra.append((src, dest))
        o = assemble.Options(
            flavor=a.flavor, bin_dir=a.bin_dir, lock_path=a.lock, out_dir=a.out, repo_root=repo,
            site_packages=sp, cache_dir=a.cache_dir, tag=a.tag, debug=a.debug, extra_files=extra,
            source_date_epoch=source_date_epoch(repo), revision=_git(repo, "rev-parse", "HEAD") or "unknown",
            gzip_level=a.gzip_level)
        os.makedirs(a.out, exist_ok=True)
        r = assemble.build(o)
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    total_c = total_u = 0
    for i, l in enumerate(r.layers, 1):
        print(f"layer {i}: {l.blob.size:>14,} bytes compressed  {l.uncompressed:>14,} uncompressed  {l.blob.digest}")
        total_c += l.blob.size
        total_u += l.uncompressed
    print(f"total:   {total_c:>14,} bytes compressed  {total_u:>14,} uncompressed")
    print(f"manifest {r.manifest_digest}")
    print(f"wrote {os.path.join(a.out, 'oci')}, {r.archive}, {os.path.join(a.out, 'digest.txt')}"
          f" in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
