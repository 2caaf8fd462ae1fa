"""Reproducible layer tars and the OCI image layout (image-spec v1.1) that holds them.

A layer tar lists its entries sorted by path with parents first, every mtime set to the one
SOURCE_DATE_EPOCH, numeric owners with empty user and group names, and PAX format (a PAX header
only where a name is too long; never atime/ctime). It is gzip-compressed with header mtime 0 and
no file name, so the same entries always give the same bytes. One pass writes the tar, hashing
the uncompressed stream (the diff_id) and the compressed one (the blob digest) as it goes.
The layout is OUTDIR/oci/{oci-layout,index.json,blobs/sha256/*}; `archive` writes it as one
reproducible tar (an oci-archive, what `podman load -i` reads).
"""

import dataclasses
import gzip
import hashlib
import io
import json
import os
import tarfile
from typing import Dict, List, Optional

import rootfs

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

GZIP_LEVEL = 6


@dataclasses.dataclass
class Blob:
    digest: str  # "sha256:..."
    size: int
    media_type: str


@dataclasses.dataclass
class Layer:
    blob: Blob
    diff_id: str
    uncompressed: int


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through to `out` (or nowhere)."""

    def __init__(self, out=None):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, b) -> int:
        self.sha.update(b)
        self.size += len(b)
        if self.out is not None:
            self.out.write(b)
        return len(b)

    def flush(self):
        if self.out is not None:
            self.out.flush()


def tarinfo(e: rootfs.Entry, mtime: int) -> tarfile.TarInfo:
    t = tarfile.TarInfo(e.path.lstrip("/"))
    t.mode, t.uid, t.gid, t.uname, t.gname, t.mtime = e.mode & 0o7777, e.uid, e.gid, "", "", mtime
    if e.kind == rootfs.DIR:
        t.type = tarfile.DIRTYPE
    elif e.kind == rootfs.SYMLINK:
        t.type, t.linkname = tarfile.SYMTYPE, e.link
    elif e.kind == rootfs.HARDLINK:
        t.type, t.linkname = tarfile.LNKTYPE, e.link.lstrip("/")
    else:
        t.type, t.size = tarfile.REGTYPE, e.size
    return t


def write_tar(entries: List[rootfs.Entry], out, mtime: int) -> None:
    """Writes entries (already in order) as a tar stream to the file object `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            t = tarinfo(e, mtime)
            if e.kind != rootfs.FILE:
                tar.addfile(t)
            elif e.data is not None:
                tar.addfile(t, io.BytesIO(e.data))
            else:
                with open(e.src, "rb") as f:
                    if os.fstat(f.fileno()).st_size != e.size:
                        raise rootfs.RootfsError(f"{e.src} changed size while the image was built")
                    tar.addfile(t, f)


def write_layer(entries: List[rootfs.Entry], blobs_dir: str, mtime: int, level: int = GZIP_LEVEL) -> Layer:
    tmp = os.path.join(blobs_dir, ".layer.tmp")
    with open(tmp, "wb") as f:
        compressed = _HashingWriter(f)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=level, mtime=0)
        raw = _HashingWriter(gz)
        write_tar(entries, raw, mtime)
        gz.close()
    digest = "sha256:" + compressed.sha.hexdigest()
    os.replace(tmp, os.path.join(blobs_dir, digest.split(":")[1]))
    return Layer(Blob(digest, compressed.size, MT_LAYER), "sha256:" + raw.sha.hexdigest(), raw.size)


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def write_json_blob(obj, blobs_dir: str, media_type: str) -> Blob:
    data = canonical_json(obj)
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs_dir, digest), "wb") as f:
        f.write(data)
    return Blob("sha256:" + digest, len(data), media_type)


def descriptor(b: Blob, annotations: Optional[Dict[str, str]] = None) -> Dict:
    d = {"mediaType": b.media_type, "digest": b.digest, "size": b.size}
    if annotations:
        d["annotations"] = annotations
    return d


def write_layout(layout_dir: str, layers: List[Layer], config: Dict, tag: str) -> Blob:
    """Writes config, manifest, index.json and oci-layout (layers are already in blobs/); returns
    the manifest's blob."""
    blobs = os.path.join(layout_dir, "blobs", "sha256")
    cfg = write_json_blob(config, blobs, MT_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": descriptor(cfg),
                "layers": [descriptor(l.blob) for l in layers]}
    man = write_json_blob(manifest, blobs, MT_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": MT_INDEX,
             "manifests": [descriptor(man, {"org.opencontainers.image.ref.name": tag})]}
    with open(os.path.join(layout_dir, "index.json"), "wb") as f:
        f.write(canonical_json(index))
    with open(os.path.join(layout_dir, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return man


def archive(layout_dir: str, out_path: str, mtime: int) -> None:
    """The layout folder as one reproducible (uncompressed) tar."""
    fs = rootfs.Rootfs()
    for d, dirs, files in os.walk(layout_dir):
        for n in files:
            if n.startswith("."):
                continue
            p = os.path.join(d, n)
            rel = "/" + os.path.relpath(p, layout_dir)
            fs.file(rel, 0, "layout", src=p)
    with open(out_path, "wb") as f:
        write_tar(fs.layer_entries(0), f, mtime)
