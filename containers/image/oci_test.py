"""Reproducibility and validity of the OCI output: two builds of the same inputs are byte for byte
the same; SOURCE_DATE_EPOCH or any input changes the digest; every layer tar is sorted, parents
first, with numeric owners, empty owner names and the one mtime; index.json -> manifest ->
config -> layers all exist with the digests, sizes and media types the spec asks for."""

import filecmp
import gzip
import hashlib
import io
import json
import os
import tarfile
import unittest

import testlib


def read_blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
        return f.read()


class ReproducibleTest(testlib.TestCase):
    def test_same_inputs_same_bytes(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        self.build_ok(a)
        self.build_ok(b)
        da, db = testlib.slurp(f"{a}/digest.txt"), testlib.slurp(f"{b}/digest.txt")
        self.assertEqual(da, db)
        self.assertTrue(da.startswith("sha256:"))
        cmp = filecmp.dircmp(os.path.join(a, "oci", "blobs", "sha256"), os.path.join(b, "oci", "blobs", "sha256"))
        self.assertEqual(cmp.left_only + cmp.right_only, [])
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        self.assertEqual(mismatch + errors, [])
        self.assertTrue(filecmp.cmp(f"{a}/cpu.oci.tar", f"{b}/cpu.oci.tar", shallow=False))

    def test_epoch_and_inputs_change_the_digest(self):
        self.build_ok(os.path.join(self.tmp, "a"))
        self.build_ok(os.path.join(self.tmp, "b"), epoch="1700000001")
        with open(os.path.join(self.fx.repo, "convforever", "train", "recipes", "tiny.flags"), "a") as f:
            f.write("--epochs=2\n")
        self.build_ok(os.path.join(self.tmp, "c"))
        digests = {testlib.slurp(os.path.join(self.tmp, d, "digest.txt")) for d in "abc"}
        self.assertEqual(len(digests), 3)

    def test_layer_tars_are_normalized(self):
        out = os.path.join(self.tmp, "a")
        self.build_ok(out, epoch="1234567890")
        layout = os.path.join(out, "oci")
        index = json.loads(testlib.slurp(os.path.join(layout, "index.json")))
        manifest = json.loads(read_blob(layout, index["manifests"][0]["digest"]))
        self.assertEqual(len(manifest["layers"]), 3)
        for layer in manifest["layers"]:
            raw = gzip.decompress(read_blob(layout, layer["digest"]))
            blob = read_blob(layout, layer["digest"])
            self.assertEqual(blob[4:8], b"\0\0\0\0", "gzip header mtime must be 0")
            self.assertEqual(blob[3] & 0x08, 0, "gzip header must carry no file name")
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                members = tar.getmembers()
                names = [m.name.rstrip("/") for m in members]
                self.assertEqual(names, sorted(names, key=lambda p: p.split("/")), "entries sorted by path")
                seen = set()
                for m in members:
                    parent = os.path.dirname(m.name.rstrip("/"))
                    self.assertTrue(parent == "" or parent in seen, f"{m.name} comes before its folder")
                    seen.add(m.name.rstrip("/"))
                    self.assertEqual(m.mtime, 1234567890, m.name)
                    self.assertEqual((m.uname, m.gname), ("", ""), m.name)
                    self.assertIn((m.uid, m.gid), ((0, 0), (1000, 1000)), m.name)
                    self.assertFalse(set(m.pax_headers) & {"mtime", "atime", "ctime"}, m.name)
        by_name = {}
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(read_blob(layout, layer["digest"])))) as t:
                by_name.update({m.name.rstrip("/"): m for m in t.getmembers()})
        self.assertEqual(by_name["tmp"].mode, 0o1777)
        for d in ("data", "runs", "cache/huggingface", "home/cf"):
            self.assertEqual((by_name[d].uid, by_name[d].gid), (1000, 1000), d)
        self.assertTrue(by_name["lib64/ld-linux-x86-64.so.2"].issym())
        self.assertIn("usr/share/doc/cf-test-libc/copyright", by_name)
        self.assertNotIn("usr/share/doc/cf-test-libc/changelog.gz", by_name)
        self.assertNotIn("usr/share/man/man1/x.1", by_name)
        self.assertTrue(by_name["opt/convforever/runs"].issym())
        self.assertEqual(by_name["opt/convforever/runs"].linkname, "/runs")
        for p in ("opt/convforever/bin/cf", "opt/convforever/lib/libz.so.1",
                  "opt/convforever/convforever/train/recipes/tiny.flags",
                  "opt/convforever/convforever/caption/data/categories.txt",
                  "opt/convforever/convforever/plan/gpus.csv", "etc/passwd", "etc/group", "etc/nsswitch.conf",
                  "etc/ssl/certs/ca-certificates.crt"):
            self.assertIn(p, by_name)


class LayoutTest(testlib.TestCase):
    def test_index_manifest_config_layers(self):
        out = os.path.join(self.tmp, "a")
        r = self.build_ok(out, "--tag", "convforever:test")
        layout = os.path.join(out, "oci")
        self.assertEqual(json.loads(testlib.slurp(os.path.join(layout, "oci-layout"))), {"imageLayoutVersion": "1.0.0"})
        index = json.loads(testlib.slurp(os.path.join(layout, "index.json")))
        self.assertEqual(index["schemaVersion"], 2)
        self.assertEqual(index["mediaType"], "application/vnd.oci.image.index.v1+json")
        (desc,) = index["manifests"]
        self.assertEqual(desc["annotations"], {"org.opencontainers.image.ref.name": "convforever:test"})
        self.assertEqual(testlib.slurp(os.path.join(out, "digest.txt")).strip(), desc["digest"])
        self.assertIn(desc["digest"], r.stdout)

        def blob(d):
            data = read_blob(layout, d["digest"])
            self.assertEqual(len(data), d["size"], d["digest"])
            self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), d["digest"])
            return data

        self.assertEqual(desc["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        manifest = json.loads(blob(desc))
        self.assertEqual(manifest["mediaType"], desc["mediaType"])
        self.assertEqual(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json")
        config = json.loads(blob(manifest["config"]))
        diff_ids = []
        for layer in manifest["layers"]:
            self.assertEqual(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
            diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(blob(layer))).hexdigest())
        self.assertEqual(config["rootfs"], {"type": "layers", "diff_ids": diff_ids})
        self.assertEqual((config["architecture"], config["os"]), ("amd64", "linux"))
        self.assertEqual(config["created"], "2023-11-14T22:13:20Z")
        c = config["config"]
        self.assertEqual(c["User"], "1000:1000")
        self.assertEqual(c["Entrypoint"], ["/opt/convforever/bin/cf"])
        self.assertEqual(c["Cmd"], ["help"])
        self.assertIn("LD_LIBRARY_PATH=/opt/convforever/lib", c["Env"])
        self.assertNotIn("NVIDIA_VISIBLE_DEVICES=all", c["Env"])
        self.assertEqual(sorted(c["Volumes"]), ["/cache/huggingface", "/data", "/runs"])
        self.assertEqual(c["Labels"]["org.opencontainers.image.created"], config["created"])
        self.assertEqual(len(config["history"]), 3)
        # The archive holds the same layout.
        with tarfile.open(os.path.join(out, "cpu.oci.tar")) as t:
            names = set(t.getnames())
            self.assertIn("index.json", names)
            self.assertIn("oci-layout", names)
            self.assertIn("blobs/sha256/" + desc["digest"].split(":")[1], names)
            self.assertEqual(t.extractfile("index.json").read(), testlib.slurp(os.path.join(layout, "index.json"), "rb"))

    def test_ca_bundle_is_the_sorted_certificates(self):
        out = os.path.join(self.tmp, "a")
        self.build_ok(out)
        layout = os.path.join(out, "oci")
        index = json.loads(testlib.slurp(os.path.join(layout, "index.json")))
        manifest = json.loads(read_blob(layout, index["manifests"][0]["digest"]))
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(read_blob(layout, manifest["layers"][0]["digest"])))) as t:
            bundle = t.extractfile("etc/ssl/certs/ca-certificates.crt").read()
        self.assertLess(bundle.index(b"AAAA"), bundle.index(b"BBBB"))


if __name__ == "__main__":
    unittest.main()
