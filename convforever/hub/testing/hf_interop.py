"""The real huggingface_hub client against FakeHub (run by convforever/hub/hf_interop_test.cc).

Environment: HF_ENDPOINT (the fake), HF_TOKEN, HF_HUB_CACHE (a scratch directory),
HF_HUB_DISABLE_XET=1 (the fake speaks Git LFS, not Xet). Argument: a scratch folder.
create_repo, upload_folder of a small text file (regular), a 300 KB binary (LFS basic) and an
11 MB binary (LFS multipart at the fake's 2 MB threshold), then hf_hub_download of each file and a
byte comparison. Exits non-zero with a message on the first difference.
"""
import os
import sys

from huggingface_hub import HfApi, hf_hub_download


def main() -> int:
    scratch = sys.argv[1]
    folder = os.path.join(scratch, "upload")
    os.makedirs(folder, exist_ok=True)
    files = {
        "notes.txt": b"ConvForever interop check\n" * 10,
        "weights/mid.bin": bytes((i * 7 + 3) % 251 for i in range(300 * 1024)),
        "weights/big.bin": os.urandom(11 * 1024 * 1024),
    }
    for name, data in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    api = HfApi()  # endpoint and token from HF_ENDPOINT / HF_TOKEN
    repo_id = "convforever/interop"
    url = api.create_repo(repo_id, private=True)
    print("created", url.repo_id)
    api.create_repo(repo_id, private=True, exist_ok=True)  # the 409 path
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="interop")
    print("committed", info.oid)
    for name, data in files.items():
        local = hf_hub_download(repo_id, name, cache_dir=os.path.join(scratch, "cache"))
        with open(local, "rb") as f:
            got = f.read()
        if got != data:
            print(f"MISMATCH {name}: {len(got)} bytes back, {len(data)} sent", file=sys.stderr)
            return 1
        print("downloaded", name, len(got))
    print("INTEROP OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
