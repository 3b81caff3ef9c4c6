"""Compiles napikit's Cython extensions; all metadata is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("napikit.decision", ["napikit/decision.pyx"]),
    Extension("napikit._core", ["napikit/_core.pyx"]),
    # The same core recording timelines (core/trace.pxi): used only when one is asked for.
    Extension("napikit._core_traced", ["napikit/_core_traced.pyx"],
              define_macros=[("NAPIKIT_TRACE_BUILD", "1")]),
    Extension("napikit_plugins._policies", ["napikit_plugins/_policies.pyx"]),
    # The host benchmarks' timed loops (napikit calibrate / kernel-bench): C with pthreads.
    Extension("napikit.host._bench", ["napikit/host/_bench.pyx"], include_dirs=["napikit/host"],
              extra_link_args=["-pthread"], extra_compile_args=["-pthread"]),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
