"""`lock` on this machine: the ELF closure of a bin dir splits into wheel files (pinned by RECORD
and the wheel's pinned sha256, found through a package index served on 127.0.0.1) and Debian
packages (pinned from apt's index, without fetching), plus the fixed base list; the driver's
library is host-provided for cuda and an error for cpu; the JSON is deterministic."""

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

import testlib

WHEEL_SHA = hashlib.sha256(b"the fixture wheel").hexdigest()


class Index(http.server.BaseHTTPRequestHandler):
    """A PEP 691 JSON simple index with one project, as strict as the real one about the path."""
    files = []

    def do_GET(self):
        if self.path != "/simple/pyarrow/" or "application/vnd.pypi.simple.v1+json" not in self.headers.get("Accept", ""):
            self.send_error(404)
            return
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": "pyarrow", "files": self.files}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class LockTest(testlib.TestCase):
    def setUp(self):
        super().setUp()
        Index.files = [
            {"filename": "pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl", "hashes": {"sha256": WHEEL_SHA}},
            {"filename": "pyarrow-26.0.1-cp312-cp312-manylinux_2_28_x86_64.whl", "hashes": {"sha256": "1" * 64}},
            {"filename": "pyarrow-26.0.0-cp311-cp311-manylinux_2_28_x86_64.whl", "hashes": {"sha256": "2" * 64}},
        ]
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Index)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        # zstd needs libz (here: a "pyarrow" wheel library), liblzma, liblz4 and libc (Debian).
        self.site = os.path.join(self.tmp, "lock-site")
        self.entry = testlib.make_dist(self.site, "pyarrow", "26.0.1", {"pyarrow/libz.so.1": f"{testlib.LIBDIR}/libz.so.1"})
        self.bin = os.path.join(self.tmp, "lock-bin")
        os.makedirs(self.bin)
        shutil.copyfile("/usr/bin/zstd", os.path.join(self.bin, "zstd"))
        self.req = os.path.join(self.tmp, "requirements.lock")
        with open(self.req, "w") as f:
            f.write(f"pyarrow==26.0.1 \\\n    --hash=sha256:{'1' * 64} \\\n    --hash=sha256:{WHEEL_SHA}\n    # via -r x\n")

    def lock(self, out, flavor="cpu"):
        cmd = [sys.executable, testlib.BUILD_IMAGE, "lock", "--flavor", flavor, "--bin-dir", self.bin,
               "--out", out, "--site-packages", self.site, "--requirements-lock", self.req,
               "--index-json", f"http://127.0.0.1:{self.server.server_port}/simple", "--repo-root", self.tmp]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_closure_split_and_pinned(self):
        out = os.path.join(self.tmp, "cpu.json")
        r = self.lock(out)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = testlib.slurp(out)
        lock = json.loads(text)
        self.assertEqual(text, json.dumps(lock, indent=2, sort_keys=True) + "\n")
        self.assertIn("build_image.py lock --flavor cpu", lock["_regenerate"])
        pkgs = {d["package"]: d for d in lock["debian"]}
        for p in ("libc6", "liblzma5", "liblz4-1", "libgcc-s1", "libstdc++6", "ca-certificates", "dataset-fashion-mnist"):
            self.assertIn(p, pkgs)
            self.assertRegex(pkgs[p]["sha256"], r"^[0-9a-f]{64}$")
            self.assertTrue(pkgs[p]["filename"].startswith("pool/"))
        self.assertNotIn("zlib1g", pkgs, "libz comes from the wheel folder, which ld.so searches first")
        self.assertNotIn("zstd", pkgs, "the binary itself is not a Debian input")
        self.assertNotIn("dash", pkgs)
        self.assertEqual([d["package"] for d in lock["debian_debug"]], ["busybox-static"])
        (w,) = lock["wheels"]
        self.assertEqual((w["distribution"], w["version"], w["wheel_sha256"]), ("pyarrow", "26.0.1", WHEEL_SHA))
        self.assertEqual(w["wheel"], "pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl")
        self.assertEqual(w["files"], self.entry["files"])
        again = os.path.join(self.tmp, "again.json")
        self.assertEqual(self.lock(again).returncode, 0)
        self.assertEqual(testlib.slurp(again), text)

    def test_driver_library_host_provided_for_cuda_only(self):
        testlib.make_driver_binary(self.tmp, self.bin)
        r = self.lock(os.path.join(self.tmp, "cpu.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs-driver needs libcuda.so.1", r.stderr)
        out = os.path.join(self.tmp, "cuda.json")
        r = self.lock(out, "cuda")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(testlib.slurp(out))["host_provided"], ["libcuda.so.1"])

    def test_wheel_not_pinned_or_modified(self):
        with open(os.path.join(self.site, "pyarrow", "libz.so.1"), "ab") as f:
            f.write(b"\0")
        r = self.lock(os.path.join(self.tmp, "x.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("pyarrow/libz.so.1", r.stderr)
        self.assertIn("RECORD", r.stderr)

    def test_installed_wheel_hash_not_in_requirements_lock(self):
        with open(self.req, "w") as f:
            f.write(f"pyarrow==26.0.1 \\\n    --hash=sha256:{'1' * 64}\n")
        r = self.lock(os.path.join(self.tmp, "x.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"sha256 {WHEEL_SHA}", r.stderr)
        self.assertIn("is not among the hashes pinned", r.stderr)


if __name__ == "__main__":
    unittest.main()
