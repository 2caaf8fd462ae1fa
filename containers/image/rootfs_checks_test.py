"""The checks a rootfs must pass before it is written: every ELF's DT_NEEDED resolves inside the
image (the driver's libraries excepted for cuda), and there is no shell unless --debug."""

import copy
import io
import os
import shutil
import tarfile
import gzip
import json
import unittest

import testlib


def image_paths(out):
    layout = os.path.join(out, "oci")
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)

    def blob(d):
        with open(os.path.join(layout, "blobs", "sha256", d.split(":")[1]), "rb") as f:
            return f.read()

    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    names = {}
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as t:
            names.update({m.name.rstrip("/"): m for m in t.getmembers()})
    return names, index


class CompletenessTest(testlib.TestCase):
    def test_missing_library_names_elf_and_library(self):
        # zstd needs libz (the wheel has it), liblzma and liblz4 (nothing in the lock has them).
        shutil.copyfile("/usr/bin/zstd", os.path.join(self.fx.bin, "zstd"))
        err = self.build_fails()
        self.assertIn("/opt/convforever/bin/zstd", err)
        self.assertIn("needs liblzma.so.5", err)
        self.assertIn("needs liblz4.so.1", err)
        self.assertNotIn("needs libz.so.1", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out-fail", "oci")), "nothing written")

    def test_missing_interpreter(self):
        lock = copy.deepcopy(self.fx.lock)
        # A libc package without the loader.
        deb = testlib.make_deb(self.fx.debs_dir, "cf-test-libc", "9", {
            f"{testlib.LIBDIR}/libc.so.6": f"{testlib.LIBDIR}/libc.so.6"})
        lock["debian"][0] = testlib.deb_entry(deb, "cf-test-libc", "9")
        shutil.copyfile(deb, os.path.join(self.fx.cache, "cf-test-libc_9_amd64.deb"))
        self.fx.write_lock(lock)
        err = self.build_fails()
        self.assertIn("ELF interpreter /lib64/ld-linux-x86-64.so.2 is not in the image", err)

    def test_driver_library_is_host_provided_for_cuda_only(self):
        testlib.make_driver_binary(self.tmp, self.fx.bin)
        err = self.build_fails()
        self.assertIn("/opt/convforever/bin/needs-driver", err)
        self.assertIn("needs libcuda.so.1", err)
        self.fx.write_lock(flavor="cuda")
        out = os.path.join(self.tmp, "cuda")
        r = self.build_ok(out, flavor="cuda")
        names, _ = image_paths(out)
        self.assertFalse([n for n in names if "libcuda" in n])
        self.assertIn("cuda.oci.tar", os.listdir(out))


class AlternativesTest(testlib.TestCase):
    """A library reached through an update-alternatives link (libblas.so.3 -> openblas) is only
    found in the image if the builder makes the link the package's postinst would have made."""

    def setUp(self):
        super().setUp()
        shutil.copyfile("/usr/bin/zstd", os.path.join(self.fx.bin, "zstd"))
        deb = testlib.make_deb(self.fx.debs_dir, "cf-test-alt", "1", {
            "/usr/lib/x86_64-linux-gnu/alt/liblzma.so.5": f"{testlib.LIBDIR}/liblzma.so.5",
            f"{testlib.LIBDIR}/liblz4.so.1": f"{testlib.LIBDIR}/liblz4.so.1"})
        self.lock = copy.deepcopy(self.fx.lock)
        self.lock["debian"].append(testlib.deb_entry(deb, "cf-test-alt", "1"))
        shutil.copyfile(deb, os.path.join(self.fx.cache, "cf-test-alt_1_amd64.deb"))

    def test_without_the_link_the_library_is_missing(self):
        self.fx.write_lock(self.lock)
        err = self.build_fails()
        self.assertIn("/opt/convforever/bin/zstd (bin", err)
        self.assertIn("needs liblzma.so.5", err)
        self.assertNotIn("needs liblz4.so.1", err)

    def test_the_link_is_made(self):
        self.lock["alternatives"] = [{"link": f"{testlib.LIBDIR}/liblzma.so.5", "package": "cf-test-alt",
                                      "target": "/usr/lib/x86_64-linux-gnu/alt/liblzma.so.5"}]
        self.fx.write_lock(self.lock)
        out = os.path.join(self.tmp, "a")
        self.build_ok(out)
        names, _ = image_paths(out)
        link = names[f"{testlib.LIBDIR}/liblzma.so.5".lstrip("/")]
        self.assertTrue(link.issym())
        self.assertEqual(link.linkname, "/usr/lib/x86_64-linux-gnu/alt/liblzma.so.5")

    def test_a_link_to_nothing_is_an_error(self):
        self.lock["alternatives"] = [{"link": f"{testlib.LIBDIR}/liblzma.so.5", "package": "cf-test-alt",
                                      "target": "/usr/lib/x86_64-linux-gnu/elsewhere/liblzma.so.5"}]
        self.fx.write_lock(self.lock)
        err = self.build_fails()
        self.assertIn("its target /usr/lib/x86_64-linux-gnu/elsewhere/liblzma.so.5 is in no package", err)


class NoShellTest(testlib.TestCase):
    def test_no_shell_without_debug(self):
        out = os.path.join(self.tmp, "a")
        self.build_ok(out)
        names, index = image_paths(out)
        for p in ("bin/sh", "bin/bash", "bin/dash", "usr/bin/sh", "bin/busybox", "usr/bin/apt", "usr/bin/dpkg"):
            self.assertNotIn(p, names)
        self.assertEqual(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "convforever:cpu")

    def test_debug_has_busybox_shell(self):
        out = os.path.join(self.tmp, "a")
        self.build_ok(out, "--debug")
        names, index = image_paths(out)
        self.assertTrue(names["bin/sh"].issym())
        self.assertEqual(names["bin/sh"].linkname, "busybox")
        self.assertIn("bin/busybox", names)
        self.assertEqual(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
                         "convforever:cpu-debug")
        self.assertIn("cpu-debug.oci.tar", os.listdir(out))

    def test_a_package_with_a_shell_is_refused(self):
        lock = copy.deepcopy(self.fx.lock)
        deb = testlib.make_deb(self.fx.debs_dir, "cf-test-dash", "1", {"/bin/dash": "/bin/true"},
                               symlinks={"/bin/sh": "dash"})
        lock["debian"].append(testlib.deb_entry(deb, "cf-test-dash", "1"))
        shutil.copyfile(deb, os.path.join(self.fx.cache, "cf-test-dash_1_amd64.deb"))
        self.fx.write_lock(lock)
        err = self.build_fails()
        self.assertIn("no shell", err)
        self.assertIn("/bin/dash (deb cf-test-dash=1)", err)
        self.assertIn("/bin/sh (deb cf-test-dash=1)", err)


if __name__ == "__main__":
    unittest.main()
