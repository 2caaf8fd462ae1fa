"""`build` uses nothing the lock does not pin: a .deb or wheel file whose sha256 differs from the
lock, a wheel file that is gone, or a wheel whose installed version is not the locked one, stops
the build with a message naming the culprit and both hashes."""

import copy
import os
import unittest

import testlib


class LockEnforcementTest(testlib.TestCase):
    def test_wrong_deb_sha256(self):
        lock = copy.deepcopy(self.fx.lock)
        lock["debian"][1]["sha256"] = "ab" * 32
        self.fx.write_lock(lock)
        err = self.build_fails()
        # The cached file no longer matches, so the builder asks the mirror, which has no such
        # package; either way the message names the package, its version and the expected hash.
        self.assertIn("cf-test-ca", err)
        self.assertIn("version 2.0", err)
        self.assertIn("ab" * 32, err)

    def test_wrong_wheel_file_sha256(self):
        lock = copy.deepcopy(self.fx.lock)
        lock["wheels"][0]["files"][0]["sha256"] = "cd" * 32
        self.fx.write_lock(lock)
        err = self.build_fails()
        self.assertIn("fakewheel/lib/libz.so.1", err)
        self.assertIn("fakewheel==1.0", err)
        self.assertIn("expected " + "cd" * 32, err)
        self.assertIn("actual " + testlib.sha256(os.path.join(self.fx.site, "fakewheel/lib/libz.so.1")), err)

    def test_changed_installed_file(self):
        with open(os.path.join(self.fx.site, "fakewheel/lib/libz.so.1"), "ab") as f:
            f.write(b"\0")
        err = self.build_fails()
        self.assertIn("fakewheel/lib/libz.so.1", err)
        self.assertIn("sha256 mismatch", err)

    def test_missing_wheel_file(self):
        os.remove(os.path.join(self.fx.site, "fakewheel/lib/libz.so.1"))
        err = self.build_fails()
        self.assertIn("file fakewheel/lib/libz.so.1 of wheel fakewheel==1.0 is missing", err)

    def test_wheel_version_mismatch(self):
        lock = copy.deepcopy(self.fx.lock)
        lock["wheels"][0]["version"] = "2.0"
        self.fx.write_lock(lock)
        err = self.build_fails()
        self.assertIn("wheel fakewheel: the lock pins version 2.0", err)
        self.assertIn("has 1.0", err)

    def test_lock_of_another_flavor(self):
        self.fx.write_lock(flavor="cuda")
        err = self.build_fails()
        self.assertIn("is for flavor cuda, not --flavor cpu", err)


if __name__ == "__main__":
    unittest.main()
