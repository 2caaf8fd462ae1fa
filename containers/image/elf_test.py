"""elf.py agrees with binutils' readelf about DT_NEEDED, RUNPATH, SONAME and the interpreter of
real files on this machine, and says None for what is not ELF."""

import os
import re
import subprocess
import unittest

import testlib
import elf


def readelf(path):
    out = subprocess.run(["readelf", "-d", "-l", "-W", path], stdout=subprocess.PIPE, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)
    runpath = [d for r in re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", out) for d in r.split(":") if d]
    soname = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", out)
    interp = re.findall(r"\[Requesting program interpreter: (.*)\]", out)
    return needed, runpath, soname[0] if soname else None, interp[0] if interp else None


class ElfTest(testlib.TestCase):
    def test_matches_readelf(self):
        files = ["/bin/true", "/usr/bin/zstd", f"{testlib.LIBDIR}/libc.so.6", f"{testlib.LIBDIR}/libz.so.1",
                 "/usr/lib/x86_64-linux-gnu/gconv/UHC.so"]
        for p in files:
            info = elf.read(p)
            self.assertEqual((info.needed, info.runpath, info.soname, info.interpreter), readelf(p), p)
        self.assertEqual(elf.read(files[-1]).runpath, ["$ORIGIN"])

    def test_not_elf(self):
        p = os.path.join(self.tmp, "script")
        with open(p, "w") as f:
            f.write("#!/bin/sh\n")
        self.assertIsNone(elf.read(p))

    def test_truncated(self):
        p = os.path.join(self.tmp, "cut")
        with open("/bin/true", "rb") as f, open(p, "wb") as g:
            g.write(f.read(100))
        with self.assertRaises(elf.ElfError) as cm:
            elf.read(p)
        self.assertIn(p, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
