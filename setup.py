"""Builds sipacd's Cython extensions.

Every ``acdcore/*.pyx`` becomes an extension of the same dotted name; the
pure-Python reference in acdcore keeps the package usable (and testable
against the compiled engine) when a build is missing.
"""
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent


def acdcore_extensions():
    exts = []
    for pyx in sorted((HERE / "acdcore").glob("*.pyx")):
        name = "acdcore." + pyx.stem
        exts.append(
            Extension(name, [str(pyx.relative_to(HERE))], extra_compile_args=["-O3"])
        )
    return exts


setup(
    ext_modules=cythonize(
        acdcore_extensions(),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
