"""cf_fuzzer: one libFuzzer target and the regression test that replays its committed corpus.

cf_fuzzer(name = "idx", srcs = ["idx_fuzzer.cc"], deps = [...]) defines
  :idx         the fuzzer. With --config=fuzz (clang, ASan + UBSan, see .bazelrc) it links libFuzzer;
               in every other build it links replay_main.cc, which runs the input files it is given.
  :idx_test    a test that replays every file under corpus/idx/ (the committed seeds and every
               crash ever found) through the target, in the default build and under --config=asan.
The corpus lives in corpus/<name>/ and the dictionary, when the format has keywords, in
dict/<name>.dict; `tools/cf fuzz` runs the fuzzers with both.
"""

def cf_fuzzer(name, srcs, deps = []):
    native.cc_library(
        name = name + "_target",
        testonly = True,
        srcs = srcs,
        deps = deps + [":check"],
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [":" + name + "_target"] + select({
            ":libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = native.glob(["corpus/" + name + "/**", "dict/" + name + ".dict"]),
        tags = ["fuzzer"],
    )
    native.cc_test(
        name = name + "_test",
        deps = [":" + name + "_target", ":replay_main"],
        args = ["convforever/fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]),
        size = "small",
    )
