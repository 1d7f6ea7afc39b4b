"""Huge pages for XLA:CPU's temporaries: ``python -m jseg.main`` restarts itself once with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``.

XLA:CPU allocates a step's temporaries afresh every step, and glibc maps each block over 32 MB
anew, so every step touches its working set page by page (DeepLabV3+ R-50-D8 at batch 2 of
256x512: ~980k minor page faults per step). With the tunable, glibc asks for transparent huge
pages on those maps (34k faults; the 512x1024 step 41 -> 32 s, docs/benchmark.md). glibc reads
its tunables at start only, hence the restart; values are unchanged. ``JSEG_MALLOC_HUGETLB=0``,
a ``glibc.malloc.hugetlb`` already set, another C library or glibc < 2.35 leave the process as it
is.
"""
import os
import sys
from typing import Mapping, Optional

TUNABLE = 'glibc.malloc.hugetlb'


def glibc_version() -> Optional[tuple]:
  """(major, minor) of the running glibc, None for another C library."""
  try:
    name, version = os.confstr('CS_GNU_LIBC_VERSION').split()
  except (AttributeError, ValueError, OSError):
    return None
  return tuple(int(v) for v in version.split('.')[:2]) if name == 'glibc' else None


def tunables_to_set(environ: Mapping[str, str], glibc: Optional[tuple]) -> Optional[str]:
  """The GLIBC_TUNABLES value with the huge-page tunable added, or None when nothing is to be
  done (opted out, already set, not glibc >= 2.35)."""
  current = environ.get('GLIBC_TUNABLES', '')
  if environ.get('JSEG_MALLOC_HUGETLB', '1') == '0' or TUNABLE in current:
    return None
  if glibc is None or glibc < (2, 35):
    return None
  return ':'.join(t for t in (current, f'{TUNABLE}=1') if t)


def reexec_with_hugetlb() -> None:
  """Replaces this process by the same command with the tunable set, where it applies (the
  module docstring); returns where it does not."""
  tunables = tunables_to_set(os.environ, glibc_version())
  if tunables is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, sys.orig_argv, {**os.environ, 'GLIBC_TUNABLES': tunables})
