"""Builds perfkit's one compiled module, ``perfkit.net._rx`` (everything else is in pyproject.toml).

It is optional: where it cannot be built (no C compiler, not Linux) or ``PERFKIT_NO_EXTENSIONS`` is
set, perfkit installs without it and does the same work in Python, more slowly.  ``PERFKIT_SANITIZE=1``
builds it with AddressSanitizer and UBSan (``.ci/run`` does, in a copy, for the differential tests).
"""

import os
import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux") and not os.environ.get("PERFKIT_NO_EXTENSIONS"):
    flags = ["-O2", "-std=c11", "-D_GNU_SOURCE", "-pthread", "-Wall"]
    link = ["-pthread"]
    if os.environ.get("PERFKIT_SANITIZE"):
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        flags = ["-O1", "-g", *flags[1:], *sanitize]
        link += sanitize
    ext_modules.append(Extension("perfkit.net._rx", ["perfkit/net/_rx.c", "perfkit/net/_rxthread.c"],
                                 depends=["perfkit/net/_rx.h"], optional=not os.environ.get("PERFKIT_SANITIZE"),
                                 extra_compile_args=flags, extra_link_args=link))

setup(ext_modules=ext_modules)
