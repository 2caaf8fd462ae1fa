"""Shared-library closure of a set of ELF files, resolved on the build machine like ld.so would
resolve it inside the image.

The image runs with LD_LIBRARY_PATH=/opt/convforever/lib (every wheel library, flattened) and
without the binaries' build-machine RUNPATHs, so a DT_NEEDED name is looked up first in the
wheel library folders of the venv (in the order given), then in the system folders. A name found
in neither is an error naming the ELF that needs it. Names the host provides at run time (the
NVIDIA driver's libcuda and libnvidia-ml, injected by the container toolkit) are recorded but not
followed. Libraries that a library loads with dlopen (cuDNN's engine libraries, torch's NVRTC
shim) are invisible to DT_NEEDED; DLOPEN_COMPANIONS lists them so they come along.
"""

import dataclasses
import fnmatch
import os
from typing import Dict, Iterable, List, Set, Tuple

import elf

# Searched after LD_LIBRARY_PATH, the way Debian's glibc searches without an ld.so.cache.
SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
               "/lib", "/usr/lib")

# Per flavor: sonames (and their versioned forms) that come from the host, never from the image.
HOST_PROVIDED = {
    "cpu": (),
    "cuda": ("libcuda.so", "libnvidia-ml.so"),
}

# Library -> shell patterns of libraries in its own folder that it dlopens.
DLOPEN_COMPANIONS = {
    "libcudnn.so.9": ("libcudnn_*.so.9",),
    "libtorch_cuda.so": ("libtorch_cuda_linalg.so", "libcaffe2_nvrtc.so"),
    "libnvrtc.so.13": ("libnvrtc-builtins.so.13.0",),
}


class ClosureError(Exception):
    pass


def is_host_provided(flavor: str, soname: str) -> bool:
    return any(soname == p or soname.startswith(p + ".") for p in HOST_PROVIDED[flavor])


@dataclasses.dataclass
class Closure:
    wheel_libs: Dict[str, str]  # soname -> host path (a file in a wheel folder)
    system_files: Set[str]  # host paths of system libraries and ELF interpreters
    host_provided: Set[str]  # sonames left to the host
    needed_by: Dict[str, str]  # soname or path -> the first ELF that needed it (for messages)


class Resolver:
    """Walks DT_NEEDED from a growing set of ELF files; `add` may be called again later (the lock
    adds every ELF of a Debian package once one of its libraries is in)."""

    def __init__(self, flavor: str, wheel_dirs: List[str], system_dirs: Iterable[str] = SYSTEM_DIRS):
        self.flavor = flavor
        self.wheel_dirs = list(wheel_dirs)
        self.system_dirs = list(system_dirs)
        self.closure = Closure({}, set(), set(), {})
        self._seen: Set[str] = set()

    def _find(self, soname: str, origin_dirs: List[str]) -> Tuple[str, str]:
        for kind, dirs in (("wheel", self.wheel_dirs), ("system", origin_dirs + self.system_dirs)):
            for d in dirs:
                p = os.path.join(d, soname)
                if os.path.isfile(p):
                    return kind, p
        return "", ""

    def add(self, paths: Iterable[str], system: bool = False) -> None:
        """Walks the ELF files at paths. system: they sit in the image where they sit here (Debian
        files), so their $ORIGIN RUNPATH means the same in both; a binary's or wheel library's
        RUNPATH does not exist in the image and is ignored."""
        todo = [(p, system) for p in paths]
        while todo:
            path, is_system = todo.pop()
            real = os.path.realpath(path)
            if real in self._seen:
                continue
            self._seen.add(real)
            try:
                info = elf.read(real)
            except (OSError, elf.ElfError) as e:
                raise ClosureError(f"cannot read ELF {path}: {e}") from e
            if info is None:
                continue
            if info.interpreter and info.interpreter not in self.closure.system_files:
                if not os.path.exists(info.interpreter):
                    raise ClosureError(f"{path}: its ELF interpreter {info.interpreter} is not on this machine")
                self.closure.system_files.add(info.interpreter)
                self.closure.needed_by.setdefault(info.interpreter, path)
            origin = [d.replace("$ORIGIN", os.path.dirname(path)).replace("${ORIGIN}", os.path.dirname(path))
                      for d in info.runpath if is_system and "ORIGIN" in d]
            for soname in info.needed:
                todo.extend(self._need(soname, path, origin))

    def _need(self, soname: str, who: str, origin_dirs: List[str]) -> List[Tuple[str, bool]]:
        c = self.closure
        if is_host_provided(self.flavor, soname):
            c.host_provided.add(soname)
            return []
        if soname in c.wheel_libs:
            return []
        kind, p = self._find(soname, origin_dirs)
        if not kind:
            raise ClosureError(
                f"{who} needs {soname}, found in no wheel library folder ({', '.join(self.wheel_dirs) or 'none'})"
                f" and no system folder ({', '.join(self.system_dirs)})")
        c.needed_by.setdefault(soname, who)
        out = [(p, kind == "system")]
        if kind == "wheel":
            c.wheel_libs[soname] = p
            folder = os.path.dirname(p)
            for pattern in DLOPEN_COMPANIONS.get(soname, ()):
                for name in sorted(os.listdir(folder)):
                    if fnmatch.fnmatch(name, pattern) and name not in c.wheel_libs:
                        c.wheel_libs[name] = os.path.join(folder, name)
                        c.needed_by.setdefault(name, f"{p} (dlopen)")
                        out.append((os.path.join(folder, name), False))
        else:
            c.system_files.add(p)
        return out
