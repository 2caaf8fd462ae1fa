"""Compile options for the few source files that include Arrow or Parquet headers.

Arrow C++ 2x's headers need C++20 while the project builds as C++17 (.bazelrc): only the
libraries whose sources include Arrow take these copts (a rule's copts come after --cxxopt, so the
later -std wins), and their public headers stay free of Arrow types.
"""

ARROW_COPTS = ["-std=c++20"]
