"""The image's file tree before it is cut into layers, and the checks it must pass.

Paths are absolute inside the image ("/usr/lib/x"). Every entry says which layer it goes to;
parent folders are implied (root-owned, 0755) unless added explicitly. Regular files hold their
bytes or the host path to read them from when the layer is written. Two different entries for
one path are an error naming both origins; an identical folder twice is fine.

Checks: `check_no_shell` (no shell, package manager or compiler: the image runs one binary), and
`check_complete` (every ELF's DT_NEEDED resolves inside the tree the way ld.so would resolve it
in the image: LD_LIBRARY_PATH folders, then the system folders; its interpreter exists).
"""

import dataclasses
import io
import os
import posixpath
from typing import Dict, Iterable, List, Optional

import closure
import elf

DIR, FILE, SYMLINK, HARDLINK = "dir", "file", "symlink", "hardlink"

# Basenames that must not exist in any bin folder of a production image.
FORBIDDEN = ("sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "dpkg-deb", "gcc", "cc",
             "g++", "c++", "ld", "python3")
BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/convforever/bin")


class RootfsError(Exception):
    pass


@dataclasses.dataclass
class Entry:
    path: str
    kind: str
    layer: int
    origin: str  # for messages: the package, wheel or host file it came from
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    data: Optional[bytes] = None
    src: Optional[str] = None  # host file to read at write time (large wheel libraries)
    size: int = 0
    link: str = ""  # symlink target, or hardlink target path (absolute in the image)

    def same_as(self, other: "Entry") -> bool:
        keys = ("kind", "mode", "uid", "gid", "link")
        if any(getattr(self, k) != getattr(other, k) for k in keys):
            return False
        if self.kind == FILE:
            return self.size == other.size and self.read() == other.read()
        return True

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        with open(self.src, "rb") as f:
            return f.read()

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with open(self.src, "rb") as f:
            return f.read(n)


def norm(path: str) -> str:
    """"./usr/lib/", "usr/lib" and "/usr/lib" are all "/usr/lib"."""
    if path.startswith("./"):
        path = path[1:]
    return posixpath.normpath("/" + path.lstrip("/")) if path not in ("", ".") else "/"


class Rootfs:
    def __init__(self):
        self.entries: Dict[str, Entry] = {}

    def add(self, e: Entry) -> None:
        e.path = norm(e.path)
        if e.path == "/":
            return
        old = self.entries.get(e.path)
        if old is not None:
            if old.kind == DIR and e.kind == DIR:
                # A folder the image itself sets up (/tmp 1777, /home/cf 1000) wins over a package's.
                if e.origin.startswith("image"):
                    self.entries[e.path] = dataclasses.replace(e, layer=min(old.layer, e.layer))
                return
            if not old.same_as(e):
                raise RootfsError(f"{e.path} comes from both {old.origin} and {e.origin}, with different content")
            return
        self.entries[e.path] = e

    def dir(self, path: str, layer: int, origin: str, mode=0o755, uid=0, gid=0) -> None:
        self.add(Entry(path, DIR, layer, origin, mode=mode, uid=uid, gid=gid))

    def file(self, path: str, layer: int, origin: str, data: bytes = None, src: str = None, mode=0o644) -> None:
        size = len(data) if data is not None else os.path.getsize(src)
        self.add(Entry(path, FILE, layer, origin, mode=mode, data=data, src=src, size=size))

    def symlink(self, path: str, target: str, layer: int, origin: str) -> None:
        self.add(Entry(path, SYMLINK, layer, origin, mode=0o777, link=target))

    def layer_entries(self, layer: int) -> List[Entry]:
        """The layer's entries plus every parent folder, parents before children, sorted by path."""
        own = {p: e for p, e in self.entries.items() if e.layer == layer}
        for p in list(own):
            d = posixpath.dirname(p)
            while d != "/" and d not in own:
                parent = self.entries.get(d) or Entry(d, DIR, layer, "implied")
                if parent.kind != DIR:
                    raise RootfsError(f"{p} ({own[p].origin}) is under {d}, which is a {parent.kind} ({parent.origin})")
                own[d] = dataclasses.replace(parent, layer=layer)
                d = posixpath.dirname(d)
        return [own[p] for p in sorted(own, key=lambda p: p.split("/"))]

    # --- lookup like the kernel / ld.so inside the image ---------------------------------------
    def resolve(self, path: str, depth: int = 0) -> Optional[Entry]:
        """The entry at path with every symlink (in folders on the way too) followed; None if absent."""
        if depth > 40:
            return None
        parts = [p for p in norm(path).split("/") if p]
        cur = "/"
        for i, part in enumerate(parts):
            nxt = posixpath.join(cur, part)
            e = self.entries.get(nxt)
            if e is None:
                if i == len(parts) - 1:
                    return None
                cur = nxt  # an implied folder; a missing one leaves the last step nothing to find
                continue
            if e.kind == SYMLINK:
                target = e.link if e.link.startswith("/") else posixpath.join(cur, e.link)
                rest = "/".join(parts[i + 1:])
                return self.resolve(posixpath.join(target, rest) if rest else target, depth + 1)
            if e.kind == HARDLINK:
                e = self.entries.get(norm(e.link))
            cur = nxt
            if i == len(parts) - 1:
                return e
        return None


def check_no_shell(fs: Rootfs, allowed: Iterable[str] = ()) -> None:
    allowed = set(allowed)
    found = []
    for d in BIN_DIRS:
        for name in FORBIDDEN:
            p = posixpath.join(d, name)
            if p not in allowed and p in fs.entries:
                found.append(f"{p} ({fs.entries[p].origin})")
    if found:
        raise RootfsError("the image must have no shell, package manager or compiler, but has: " + ", ".join(found))


def check_complete(fs: Rootfs, ld_library_path: List[str], flavor: str) -> int:
    """Raises naming the first ELF with an unresolvable DT_NEEDED; returns how many ELFs it checked."""
    search = list(ld_library_path) + list(closure.SYSTEM_DIRS)
    problems, checked = [], 0
    for path in sorted(fs.entries):
        e = fs.entries[path]
        if e.kind != FILE or e.size < 64 or not elf.is_elf_header(e.head(4)):
            continue
        checked += 1
        try:
            info = elf.read(e.src) if e.data is None else elf.read_stream(io.BytesIO(e.data), path)
        except elf.ElfError as err:
            problems.append(str(err))
            continue
        if info.interpreter and fs.resolve(info.interpreter) is None:
            problems.append(f"{path} ({e.origin}): ELF interpreter {info.interpreter} is not in the image")
        origin_dir = posixpath.dirname(path)
        runpath = [d.replace("$ORIGIN", origin_dir).replace("${ORIGIN}", origin_dir) for d in info.runpath]
        for soname in info.needed:
            if closure.is_host_provided(flavor, soname):
                continue
            dirs = search[:len(ld_library_path)] + runpath + search[len(ld_library_path):]
            if not any(fs.resolve(posixpath.join(d, soname)) is not None for d in dirs):
                problems.append(f"{path} ({e.origin}) needs {soname}, which is not in the image"
                                f" (searched {', '.join(dirs)})")
    if problems:
        raise RootfsError("incomplete image:\n  " + "\n  ".join(problems))
    return checked
