"""Builds sipacd's Cython extensions.

Every ``acdcore/*.pyx`` becomes an extension of the same dotted name; the
pure-Python reference in acdcore keeps the package usable (and testable
against the compiled engine) when a build is missing.

``sipagent/mediaports/*.pyx`` are C media ports for pjsua2's conference bridge
(spandsp fax, libtiff pages), ``sipagent/sip/*.pyx`` C pjsip modules (the
request guard); ``simphones/*.pyx`` are the test phones' C parts
built on them (two fax terminals back to back in memory).  They link the *shared* pjproject that
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


# What each media-port module links: the pjsua ones need pjproject.
_MEDIAPORT_NEEDS = {"fax": ("pjproject", "spandsp", "libtiff-4"),
                    "bridge_port": ("pjproject",),
                    "cng": ("pjproject", "spandsp"),
                    "jitter": ("pjproject",),
                    "rtp_poller": ("pjproject",),
                    "drain": ("pjproject",),
                    "stereo_recorder": ("pjproject",),
                    "tiffpages": ("libtiff-4",),
                    "request_guard": ("pjproject", "pjsip"),
                    "refer": ("pjproject", "pjsip", "pjsip-ua")}


def mediaport_extensions():
    pyxs = (sorted((HERE / "sipagent" / "mediaports").glob("*.pyx"))
            + sorted((HERE / "sipagent" / "sip").glob("*.pyx"))
            + sorted((HERE / "simphones").glob("*.pyx")))
    prefix = Path(os.environ.get("PJPROJECT_PREFIX") or Path(sys.prefix) / "pjproject")
    pcdir = prefix / "lib" / "pkgconfig"
    env = dict(os.environ, PKG_CONFIG_PATH=os.pathsep.join(
        filter(None, [str(pcdir), os.environ.get("PKG_CONFIG_PATH")])))
    flags = {}   # library -> (cflags, link args), or the reason it is unusable
    if (pcdir / "libpjproject.pc").is_file():
        try:
            libdir = _pkg_config("--variable=libdir", "libpjproject", env=env)[0]
            # Only the libraries the ports call into; all shared, all pjsua2's
            # own.  --disable-new-dtags: an RPATH (unlike RUNPATH) also serves
            # the libraries' own dependencies (libpjsua -> libpjsip ...).
            flags["pjproject"] = (_pkg_config("--cflags", "libpjproject", env=env),
                                  [f"-L{libdir}", "-lpjsua", "-lpjmedia", "-lpj",
                                   f"-Wl,-rpath,{libdir}", "-Wl,--disable-new-dtags"])
            # SIP-level modules (sipagent/sip/request_guard) add pjsip itself.
            flags["pjsip"] = ([], ["-lpjsip"])
            # ... and REFER handling (sipagent/sip/refer) the event subscriptions.
            flags["pjsip-ua"] = ([], ["-lpjsip-ua", "-lpjsip-simple"])
        except (LookupError, FileNotFoundError, IndexError) as e:
            flags["pjproject"] = f"pjproject at {prefix} is unusable: {e}"
    else:
        flags["pjproject"] = (f"no pjproject at {prefix} (run scripts/build-pjsua2 first, "
                              "or set PJPROJECT_PREFIX)")
    flags.setdefault("pjsip", flags["pjproject"])   # unusable for the same reason
    flags.setdefault("pjsip-ua", flags["pjproject"])
    for lib in ("spandsp", "libtiff-4"):
        try:
            flags[lib] = (_pkg_config("--cflags", lib), _pkg_config("--libs", lib))
        except (LookupError, FileNotFoundError) as e:
            flags[lib] = (f"{lib} not found ({e}); install libspandsp-dev and libtiff-dev "
                          "(scripts/install-system-packages)")
    exts = []
    for pyx in pyxs:
        module = ".".join(pyx.relative_to(HERE).with_suffix("").parts)
        needs = _MEDIAPORT_NEEDS.get(pyx.stem, ("pjproject", "spandsp", "libtiff-4"))
        missing = [flags[n] for n in needs if isinstance(flags[n], str)]
        if missing:
            _warn(f"skipping {module}: {'; '.join(missing)}")
            continue
        exts.append(Extension(
            module,
            [str(pyx.relative_to(HERE))],
            extra_compile_args=["-O2", *[f for n in needs for f in flags[n][0]]],
            extra_link_args=[f for n in needs for f in flags[n][1]],
        ))
    return exts


setup(
    ext_modules=cythonize(
        acdcore_extensions() + mediaport_extensions(),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
