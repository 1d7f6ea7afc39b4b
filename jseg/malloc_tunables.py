"""glibc malloc tunables for XLA:CPU: ``python -m jseg.main`` restarts itself once with them.

XLA:CPU allocates an execution's temporaries as one block afresh at every execution, from a
worker thread, and glibc's default gives such a block its own ``mmap`` and ``munmap``s it when
freed, so every train step faults its gigabytes of temporaries in anew, page by page: 4.0M
minor faults per DeepLabV3+ R-50-D8 step at batch 2 of 512x1024, ~12 of its 36 s. The tunables
(``TUNABLES``) keep freed memory for the next step instead: one arena (a worker thread's own
arena cannot grow past 64 MB and would fall back to ``mmap``), no ``mmap`` and no trimming of
the heap. The step then faults nothing and took 24 s. The cost: the process keeps its peak heap
until it exits. glibc reads its tunables at start only, hence the restart; values are
unchanged. A tunable the user has set keeps its value; ``JSEG_MALLOC_TUNABLES=0``, another C
library, glibc < 2.35 or an accelerator backend (:func:`accelerator_expected`: XLA's
temporaries then live on the device, and one arena would only serialize the input pipeline's
threads) leave the process as it is.
"""
import importlib.metadata
import importlib.util
import os
import sys
from typing import Mapping, Optional

# Device files of the accelerators JAX's plugins drive: NVIDIA, AMD (ROCm), TPU (VM and VFIO).
ACCELERATOR_DEVICES = ('/dev/nvidia0', '/dev/kfd', '/dev/accel0', '/dev/vfio/0')

TUNABLES = {'glibc.malloc.arena_max': '1', 'glibc.malloc.mmap_max': '0',
            'glibc.malloc.trim_threshold': str(1 << 40)}


def glibc_version() -> Optional[tuple]:
  """(major, minor) of the running glibc, None for another C library."""
  try:
    name, version = os.confstr('CS_GNU_LIBC_VERSION').split()
  except (AttributeError, ValueError, OSError):
    return None
  return tuple(int(v) for v in version.split('.')[:2]) if name == 'glibc' else None


def accelerator_installed() -> bool:
  """A GPU or TPU plugin of JAX (a ``jax_plugins`` entry point, libtpu) and its device file."""
  plugins = list(importlib.metadata.entry_points(group='jax_plugins'))
  if not plugins and importlib.util.find_spec('libtpu') is None:
    return False
  return any(os.path.exists(path) for path in ACCELERATOR_DEVICES)


def accelerator_expected(environ: Mapping[str, str], installed: bool) -> bool:
  """Whether JAX will run on an accelerator: the first of ``JAX_PLATFORMS`` where it is set,
  else whether one is ``installed`` (:func:`accelerator_installed`). Decided before JAX starts:
  a backend initialized here would hold its device across the restart."""
  platforms = [p.strip() for p in environ.get('JAX_PLATFORMS', '').split(',') if p.strip()]
  return platforms[0] != 'cpu' if platforms else installed


def tunables_to_set(environ: Mapping[str, str], glibc: Optional[tuple],
                    accelerator: bool = False) -> Optional[str]:
  """The GLIBC_TUNABLES value with ``TUNABLES`` added where the user has not set them, or None
  when nothing is to be done (opted out, all set, not glibc >= 2.35, an ``accelerator``)."""
  if (environ.get('JSEG_MALLOC_TUNABLES', '1') == '0' or glibc is None or glibc < (2, 35)
      or accelerator):
    return None
  current = [t for t in environ.get('GLIBC_TUNABLES', '').split(':') if t]
  named = {t.split('=')[0] for t in current}
  added = [f'{name}={value}' for name, value in TUNABLES.items() if name not in named]
  return ':'.join(current + added) if added else None


def reexec_with_tunables() -> None:
  """Replaces this process by the same command with the tunables set, where they apply (the
  module docstring); returns where they do not."""
  tunables = tunables_to_set(os.environ, glibc_version(),
                             accelerator_expected(os.environ, accelerator_installed()))
  if tunables is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, sys.orig_argv, {**os.environ, 'GLIBC_TUNABLES': tunables})
