"""The one test that talks to the Debian mirror: a small real package (libzstd1) is pinned from
apt's index, fetched with apt-get download into a cache, verified, reused from the cache, and
read back; a wrong pinned sha256 fails naming the package, version and both hashes."""

import dataclasses
import os
import unittest

import testlib
import debs

PACKAGE = "libzstd1"


class RealDebTest(testlib.TestCase):
    def test_pin_fetch_verify_extract(self):
        pin = debs.pin_all([PACKAGE])[PACKAGE]
        self.assertEqual(pin.package, PACKAGE)
        self.assertRegex(pin.sha256, r"^[0-9a-f]{64}$")
        self.assertTrue(pin.filename.startswith("pool/"), pin.filename)
        cache = os.path.join(self.tmp, "real-cache")
        path = debs.fetch(pin, cache)
        self.assertEqual(testlib.sha256(path), pin.sha256)
        inode = os.stat(path).st_ino
        self.assertEqual(os.stat(debs.fetch(pin, cache)).st_ino, inode, "a verified cached .deb is reused")
        names = {m.name: (m, data) for m, data in debs.members(path)}
        libs = [n for n in names if "/libzstd.so.1." in n and names[n][0].isreg()]
        self.assertEqual(len(libs), 1, sorted(names))
        self.assertTrue(names[libs[0]][1].startswith(b"\x7fELF"))

    def test_wrong_sha256_names_package_version_and_hashes(self):
        pin = debs.pin_all([PACKAGE])[PACKAGE]
        bad = dataclasses.replace(pin, sha256="ef" * 32)
        with self.assertRaises(debs.DebError) as cm:
            debs.fetch(bad, os.path.join(self.tmp, "real-cache"))
        msg = str(cm.exception)
        self.assertIn(f"package {PACKAGE} version {pin.version}", msg)
        self.assertIn("expected " + "ef" * 32, msg)
        self.assertIn("actual " + pin.sha256, msg)

    def test_version_missing_from_the_mirror(self):
        pin = debs.pin_all([PACKAGE])[PACKAGE]
        gone = dataclasses.replace(pin, version="0.0.0-cf-not-there")
        with self.assertRaises(debs.DebError) as cm:
            debs.fetch(gone, os.path.join(self.tmp, "real-cache"))
        self.assertIn(f"package {PACKAGE} version 0.0.0-cf-not-there", str(cm.exception))
        self.assertIn(f"expected sha256 {pin.sha256}", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
