"""jseg.malloc_tunables: ``python -m jseg.main`` restarts once with glibc's huge-page tunable, and
glibc then backs a large malloc with transparent huge pages (the kernel's own accounting)."""
import os
import subprocess
import sys

import pytest

from jseg import malloc_tunables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prints its pid and GLIBC_TUNABLES, restarts (reexec_with_hugetlb), then mallocs and touches
# 64 MiB and prints the AnonHugePages of the mapping that holds it (/proc/self/smaps).
PROGRAM = """
import ctypes, os
from jseg import malloc_tunables
print('start', os.getpid(), os.environ.get('GLIBC_TUNABLES'), flush=True)
malloc_tunables.reexec_with_hugetlb()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
n = 64 << 20
p = libc.malloc(n)
ctypes.memset(p, 1, n)
kib, inside = None, False
for line in open('/proc/self/smaps'):
  if '-' in line.split()[0] and not line.split()[0].endswith(':'):
    lo, hi = (int(v, 16) for v in line.split()[0].split('-'))
    inside = lo <= p < hi
  elif inside and line.startswith('AnonHugePages:'):
    kib = int(line.split()[1])
print('huge', kib)
"""


def _run(**env):
  """PROGRAM's output lines, without the caller's GLIBC_TUNABLES and JSEG_MALLOC_HUGETLB."""
  base = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', 'JSEG_MALLOC_HUGETLB')}
  done = subprocess.run([sys.executable, '-c', PROGRAM], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, env={**base, **env})
  assert done.returncode == 0, done.stderr
  return done.stdout.split('\n')


def test_tunables_to_set():
  glibc = (2, 36)
  assert malloc_tunables.tunables_to_set({}, glibc) == 'glibc.malloc.hugetlb=1'
  assert malloc_tunables.tunables_to_set({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'},
                                         glibc) == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
  # the user's own choice, the opt-out, an old glibc and another C library: nothing to do
  assert malloc_tunables.tunables_to_set({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'},
                                         glibc) is None
  assert malloc_tunables.tunables_to_set({'JSEG_MALLOC_HUGETLB': '0'}, glibc) is None
  assert malloc_tunables.tunables_to_set({}, (2, 34)) is None
  assert malloc_tunables.tunables_to_set({}, None) is None


@pytest.mark.skipif(not (malloc_tunables.glibc_version() or (0,)) >= (2, 35),
                    reason='needs glibc >= 2.35')
def test_restart_once_with_the_tunable_and_huge_pages():
  lines = _run()
  first, second, huge = lines[0].split(), lines[1].split(), lines[2].split()
  # the same process (pid), restarted once with the same command, now with the tunable
  assert first[0] == second[0] == 'start' and first[1] == second[1], lines
  assert first[2] == 'None' and second[2] == 'glibc.malloc.hugetlb=1', lines
  opted_out = _run(JSEG_MALLOC_HUGETLB='0')
  assert opted_out[0].split()[2] == 'None' and opted_out[1].startswith('huge'), opted_out
  with open('/sys/kernel/mm/transparent_hugepage/enabled') as f:
    mode = f.read()
  if '[madvise]' in mode:  # huge pages only where glibc asks for them
    assert int(huge[1]) >= 32 << 10, lines  # KiB: at least half of the 64 MiB block
    assert int(opted_out[1].split()[1]) == 0, opted_out
