"""Builds sipacd's Cython extensions.

Every ``acdcore/*.pyx`` becomes an extension of the same dotted name; the
pure-Python reference in acdcore keeps the package usable (and testable
against the compiled engine) when a build is missing.

``sipagent/mediaports/*.pyx`` are C media ports for pjsua2's conference bridge
(spandsp fax, libtiff pages).  They link the *shared* pjproject that
scripts/build-pjsua2 installs (at ``<venv>/pjproject``, or $PJPROJECT_PREFIX):
a static copy would give the module its own pjsua state.  When pjproject,
spandsp or libtiff are missing they are skipped with a warning, so the rest
of the project still installs; the fax tests then fail, naming the module.
"""
import os
import shlex
import subprocess
import sys
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


def _warn(msg):
    sys.stderr.write(f"\nsetup.py: WARNING: {msg}\n\n")


def _pkg_config(*args, env=None):
    out = subprocess.run(["pkg-config", *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise LookupError(out.stderr.strip() or f"pkg-config {' '.join(args)} failed")
    return shlex.split(out.stdout)


def mediaport_extensions():
    pyxs = sorted((HERE / "sipagent" / "mediaports").glob("*.pyx"))
    if not pyxs:
        return []
    prefix = Path(os.environ.get("PJPROJECT_PREFIX") or Path(sys.prefix) / "pjproject")
    pcdir = prefix / "lib" / "pkgconfig"
    if not (pcdir / "libpjproject.pc").is_file():
        _warn(f"no pjproject at {prefix} (run scripts/build-pjsua2 first, or set "
              f"PJPROJECT_PREFIX): skipping {', '.join(p.stem for p in pyxs)} "
              "(sipagent.mediaports: fax will not work)")
        return []
    env = dict(os.environ, PKG_CONFIG_PATH=os.pathsep.join(
        filter(None, [str(pcdir), os.environ.get("PKG_CONFIG_PATH")])))
    try:
        pj_cflags = _pkg_config("--cflags", "libpjproject", env=env)
        libdir = _pkg_config("--variable=libdir", "libpjproject", env=env)[0]
        other_cflags = _pkg_config("--cflags", "spandsp", "libtiff-4")
        other_libs = _pkg_config("--libs", "spandsp", "libtiff-4")
    except (LookupError, FileNotFoundError, IndexError) as e:
        _warn(f"{e}: skipping sipagent.mediaports (install libspandsp-dev and "
              "libtiff-dev; see scripts/install-system-packages)")
        return []
    # Only the libraries the ports call into; all shared, all pjsua2's own.
    pj_libs = [f"-L{libdir}", "-lpjsua", "-lpjmedia", "-lpj"]
    exts = []
    for pyx in pyxs:
        exts.append(Extension(
            "sipagent.mediaports." + pyx.stem,
            [str(pyx.relative_to(HERE))],
            extra_compile_args=["-O2", *pj_cflags, *other_cflags],
            # --disable-new-dtags: an RPATH (unlike RUNPATH) also serves the
            # libraries' own dependencies (libpjsua -> libpjsip ...).
            extra_link_args=[*pj_libs, *other_libs, f"-Wl,-rpath,{libdir}",
                             "-Wl,--disable-new-dtags"],
        ))
    return exts


setup(
    ext_modules=cythonize(
        acdcore_extensions() + mediaport_extensions(),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
