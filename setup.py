"""Builds perfkit's one compiled module, ``perfkit.client._rx`` (everything else is in pyproject.toml).

It is optional: where it cannot be built (no C compiler, not Linux) or ``PERFKIT_NO_EXTENSIONS`` is
set, perfkit installs without it and does the same work in Python, more slowly.
"""

import os
import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux") and not os.environ.get("PERFKIT_NO_EXTENSIONS"):
    ext_modules.append(Extension("perfkit.client._rx", ["perfkit/client/_rx.c", "perfkit/client/_rxthread.c"],
                                 depends=["perfkit/client/_rx.h"], optional=True,
                                 extra_compile_args=["-O2", "-std=c11", "-D_GNU_SOURCE", "-pthread", "-Wall"],
                                 extra_link_args=["-pthread"]))

setup(ext_modules=ext_modules)
