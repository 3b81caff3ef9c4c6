"""Compiles napikit's Cython extensions; all metadata is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("napikit.decision", ["napikit/decision.pyx"]),
    Extension("napikit._core", ["napikit/_core.pyx"]),
    Extension("napikit_plugins._policies", ["napikit_plugins/_policies.pyx"]),
    # The host benchmarks' timed loops (napikit calibrate / kernel-bench): C with pthreads.
    Extension("napikit.host._bench", ["napikit/host/_bench.pyx"], include_dirs=["napikit/host"],
              extra_link_args=["-pthread"], extra_compile_args=["-pthread"]),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
