"""Repository rule that binds a LibTorch 2.x installation as @libtorch//:torch.

Where LibTorch lives is a setting, not a constant:
  * default: the `torch/` folder of the PyTorch wheel in the project's venv (`.venv` at the
    workspace root, created by `tools/cf setup` from tools/python/requirements.lock);
  * LIBTORCH_HOME=<dir> (pass it as `--repo_env=LIBTORCH_HOME=<dir>`, e.g. in user.bazelrc): any
    LibTorch laid out as <dir>/include and <dir>/lib — pytorch.org's libtorch zip, or the
    `torch/` folder of another PyTorch wheel
    (python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))').

When <dir>/lib holds libtorch_cuda.so the CUDA libraries are linked in (with --no-as-needed, so
their kernels register) and CF_WITH_CUDA=1 is defined for every dependent. A wheel's CUDA
LibTorch has no RUNPATH of its own (Python preloads the `nvidia-*` wheels' libraries before
importing it), so the binaries get an rpath to each `site-packages/nvidia/*/lib` folder, and the
CUDA/NCCL headers come from the same wheels (`nvidia/*/include`): no CUDA toolkit is needed to
compile and link, and a machine without a GPU runs the result on the CPU.

CF_LIBTORCH_CPU_ONLY=1 (`--repo_env=CF_LIBTORCH_CPU_ONLY=1`, in an output base of its own: `tools/cf
image build cpu` does this) links only the CPU libraries of a CUDA LibTorch: libtorch_cpu and
libc10, no CF_WITH_CUDA, no NCCL. The result needs none of the CUDA wheels' large libraries, only
the two small ones that the wheel's libtorch_cpu.so itself names (the CUDA runtime and CUPTI),
which is what the CPU container image carries.
"""

_HEADER_DIRS = ["ATen", "c10", "caffe2", "torch"]

def _venv_torch(ctx):
    """The torch/ folder of the workspace's .venv, or None."""
    root = ctx.path(Label("//:WORKSPACE")).dirname
    lib = root.get_child(".venv").get_child("lib")
    if not lib.exists:
        return None
    for child in lib.readdir():
        torch = child.get_child("site-packages").get_child("torch")
        if child.basename.startswith("python3") and torch.get_child("lib").exists:
            return str(torch)
    return None

def _nvidia_dirs(ctx, home, sub):
    """<site-packages>/nvidia/*/<sub> folders next to a wheel's torch/ folder."""
    nvidia = ctx.path(home).dirname.get_child("nvidia")
    if not nvidia.exists:
        return []
    return sorted([str(d.get_child(sub)) for d in nvidia.readdir() if d.get_child(sub).exists])

def _libtorch_impl(ctx):
    home = ctx.os.environ.get("LIBTORCH_HOME", "").rstrip("/") or _venv_torch(ctx)
    if not home:
        fail("LibTorch not found: run `tools/cf setup` (creates .venv with the PyTorch wheel) or " +
             "set --repo_env=LIBTORCH_HOME=<dir with include/ and lib/>")
    include_dir = home + "/include"
    lib_dir = home + "/lib"
    if not ctx.path(include_dir + "/torch/csrc/api/include/torch/torch.h").exists:
        fail("LibTorch headers not found under %s" % include_dir)
    if not ctx.path(include_dir + "/torch/headeronly/version.h").exists:
        fail("%s has no torch/headeronly/version.h: ConvForever needs LibTorch 2.x (2.9 or newer)" % include_dir)
    for d in _HEADER_DIRS:
        if ctx.path(include_dir + "/" + d).exists:
            ctx.symlink(include_dir + "/" + d, "include/" + d)

    cpu_only = ctx.os.environ.get("CF_LIBTORCH_CPU_ONLY", "") not in ("", "0")
    wheel_has_cuda = ctx.path(lib_dir + "/libtorch_cuda.so").exists
    has_cuda = wheel_has_cuda and not cpu_only
    linkopts = ["-L" + lib_dir, "-Wl,-rpath," + lib_dir]

    # The wheel's libtorch.so and libtorch_cpu.so export their own (statically linked) copy of
    # libstdc++'s std::filesystem. The dynamic linker binds each symbol to the first library in
    # load order that defines it, and g++ puts libstdc++ last, so our std::filesystem calls went to
    # LibTorch's copy, whose remove_all crashed (a call through a null pointer: checkpoint
    # rotation, snapshot pruning). Naming libstdc++ before LibTorch makes the system's complete
    # libstdc++ the one every caller binds to.
    linkopts += ["-Wl,--push-state,--no-as-needed", "-lstdc++", "-Wl,--pop-state"]
    cuda_includes = []
    if has_cuda:
        for d in _nvidia_dirs(ctx, home, "lib"):
            linkopts.append("-Wl,-rpath," + d)
        for i, d in enumerate(_nvidia_dirs(ctx, home, "include")):
            ctx.symlink(d, "cuda_include/%d" % i)
            cuda_includes.append("cuda_include/%d" % i)
        linkopts += ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed"]
        linkopts.append("-ltorch")
    elif wheel_has_cuda:
        # CPU only from a CUDA wheel: its libtorch.so names libtorch_cuda.so, so it stays out;
        # libtorch_cpu.so names the CUDA runtime and CUPTI, found in the nvidia wheels.
        for d in _nvidia_dirs(ctx, home, "lib"):
            linkopts += ["-Wl,-rpath," + d, "-Wl,-rpath-link," + d]
    else:
        linkopts.append("-ltorch")
    linkopts += ["-ltorch_cpu", "-lc10", "-lpthread"]
    defines = ["CF_WITH_CUDA=1"] if has_cuda else []

    ctx.file("BUILD.bazel", """# Generated by //third_party/libtorch:libtorch.bzl from {home}.
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "torch",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh"]) +
           glob(["cuda_include/**/*.h", "cuda_include/**/*.hpp"]),
    includes = ["include", "include/torch/csrc/api/include"] + {cuda_includes},
    defines = {defines},
    linkopts = {linkopts},
)

# c10d's process groups: ProcessGroupNCCL.hpp declares its class only under USE_C10D_NCCL, which
# a CUDA LibTorch was built with. A separate target, so the define reaches only the files that
# create process groups.
cc_library(
    name = "c10d",
    defines = {c10d_defines},
    deps = [":torch"],
)
""".format(c10d_defines = repr(["USE_C10D_NCCL"] if has_cuda else []), home = home, defines = repr(defines), linkopts = repr(linkopts),
           cuda_includes = repr(cuda_includes)))

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["LIBTORCH_HOME", "CF_LIBTORCH_CPU_ONLY"],
    local = True,
)
