"""ELF dynamic-section reader: what a shared object or executable needs from the loader.

Reads only what ld.so reads to load a file: the ELF header, the program headers (PT_INTERP,
PT_LOAD, PT_DYNAMIC) and the dynamic entries DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, whose
strings live in DT_STRTAB (a virtual address, mapped to a file offset through the PT_LOAD
segments). 64-bit little-endian only: the images are x86-64. A file that is not ELF gives None
from `read`; a truncated or malformed ELF raises ElfError naming the file.
"""

import dataclasses
import struct
from typing import BinaryIO, List, Optional

ELF_MAGIC = b"\x7fELF"

_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 14, 15, 29


class ElfError(Exception):
    pass


@dataclasses.dataclass
class ElfInfo:
    needed: List[str]
    runpath: List[str]  # DT_RUNPATH, or DT_RPATH when there is no RUNPATH, split on ':'
    interpreter: Optional[str]  # PT_INTERP, executables only
    soname: Optional[str]


def is_elf_header(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def read(path: str) -> Optional[ElfInfo]:
    with open(path, "rb") as f:
        return read_stream(f, path)


def read_stream(f: BinaryIO, name: str) -> Optional[ElfInfo]:
    ident = f.read(16)
    if len(ident) < 16 or not is_elf_header(ident):
        return None
    if ident[4] != 2 or ident[5] != 1:
        raise ElfError(f"{name}: not a 64-bit little-endian ELF (class {ident[4]}, data {ident[5]})")

    def at(offset: int, size: int) -> bytes:
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise ElfError(f"{name}: truncated at offset {offset} (wanted {size} bytes)")
        return data

    (e_phoff,) = struct.unpack("<Q", at(0x20, 8))
    e_phentsize, e_phnum = struct.unpack("<HH", at(0x36, 4))
    loads, dynamic, interp = [], None, None
    for i in range(e_phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack(
            "<IIQQQQ", at(e_phoff + i * e_phentsize, 40))
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == _PT_INTERP:
            interp = at(p_offset, p_filesz).split(b"\0", 1)[0].decode()
    if dynamic is None:  # static executable
        return ElfInfo(needed=[], runpath=[], interpreter=interp, soname=None)

    entries = []
    raw = at(dynamic[0], dynamic[1])
    for off in range(0, len(raw) - 15, 16):
        tag, val = struct.unpack_from("<qQ", raw, off)
        if tag == _DT_NULL:
            break
        entries.append((tag, val))
    strtab_vaddr = next((v for t, v in entries if t == _DT_STRTAB), None)
    if strtab_vaddr is None:
        raise ElfError(f"{name}: dynamic section without DT_STRTAB")
    strtab_off = None
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab_vaddr < vaddr + filesz:
            strtab_off = offset + (strtab_vaddr - vaddr)
    if strtab_off is None:
        raise ElfError(f"{name}: DT_STRTAB 0x{strtab_vaddr:x} is in no PT_LOAD segment")

    def string(index: int) -> str:
        f.seek(strtab_off + index)
        out = b""
        while True:
            chunk = f.read(256)
            if not chunk:
                raise ElfError(f"{name}: unterminated string in DT_STRTAB")
            cut = chunk.find(b"\0")
            if cut >= 0:
                return (out + chunk[:cut]).decode()
            out += chunk

    needed = [string(v) for t, v in entries if t == _DT_NEEDED]
    runpath = [string(v) for t, v in entries if t == _DT_RUNPATH]
    if not runpath:
        runpath = [string(v) for t, v in entries if t == _DT_RPATH]
    soname = next((string(v) for t, v in entries if t == _DT_SONAME), None)
    dirs = [d for r in runpath for d in r.split(":") if d]
    return ElfInfo(needed=needed, runpath=dirs, interpreter=interp, soname=soname)
