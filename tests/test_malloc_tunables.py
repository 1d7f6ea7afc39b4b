"""jseg.malloc_tunables: ``python -m jseg.main`` restarts once with glibc's malloc tunables; a large
block a thread frees is then reused without page faults (the kernel's own count, getrusage)."""
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import pytest

from jseg import malloc_tunables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prints its pid and GLIBC_TUNABLES, restarts (reexec_with_tunables), then, in a thread as
# XLA:CPU's executions do: mallocs, touches and frees 256 MiB 5 times, and prints the fewest
# minor page faults of the last 4 times; then those of the last 5 of 6 executions of a jitted
# 4096 x 4096 matrix product (64 MiB each). The fewest: this VM's kernel may reclaim idle pages.
PROGRAM = """
import ctypes, os, resource, threading
from jseg import malloc_tunables
print('start', os.getpid(), os.environ.get('GLIBC_TUNABLES'), flush=True)
malloc_tunables.reexec_with_tunables()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
n, out = 256 << 20, {}

def touch():
  p = libc.malloc(n)
  ctypes.memset(p, 1, n)
  libc.free(p)

def faults(fn, times):
  counts = []
  for _ in range(times):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  return min(counts[1:])

def repeat():
  out['faults'] = faults(touch, 5)

thread = threading.Thread(target=repeat)
thread.start()
thread.join()
print('second', out['faults'])
import jax, jax.numpy as jnp
x = jnp.ones((4096, 4096), jnp.float32)
f = jax.jit(lambda x: x @ x)
print('xla', faults(lambda: f(x).block_until_ready(), 6))
"""


def _run(**env):
  """PROGRAM's output lines, without the caller's GLIBC_TUNABLES and JSEG_MALLOC_TUNABLES."""
  base = {k: v for k, v in os.environ.items()
          if k not in ('GLIBC_TUNABLES', 'JSEG_MALLOC_TUNABLES')}
  done = subprocess.run([sys.executable, '-c', PROGRAM], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, env={**base, **env})
  assert done.returncode == 0, done.stderr
  return done.stdout.split('\n')


ALL = 'glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776'


def test_tunables_to_set():
  glibc = (2, 36)
  assert malloc_tunables.tunables_to_set({}, glibc) == ALL
  # the user's own values stay, the others are added
  assert malloc_tunables.tunables_to_set(
      {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.rtld.optional_static_tls=512'}, glibc
  ) == ('glibc.malloc.arena_max=2:glibc.rtld.optional_static_tls=512:glibc.malloc.mmap_max=0'
        ':glibc.malloc.trim_threshold=1099511627776')
  # all set already, the opt-out, an old glibc and another C library: nothing to do
  assert malloc_tunables.tunables_to_set({'GLIBC_TUNABLES': ALL.replace('=0', '=4')},
                                         glibc) is None
  assert malloc_tunables.tunables_to_set({'JSEG_MALLOC_TUNABLES': '0'}, glibc) is None
  assert malloc_tunables.tunables_to_set({}, (2, 34)) is None
  assert malloc_tunables.tunables_to_set({}, None) is None
  assert malloc_tunables.tunables_to_set({}, glibc, accelerator=True) is None


def test_accelerator_backends_keep_glibc_defaults(monkeypatch, tmp_path):
  expected = malloc_tunables.accelerator_expected
  # JAX_PLATFORMS decides where set (its first platform is JAX's default backend) ...
  assert not expected({'JAX_PLATFORMS': 'cpu'}, installed=True)
  assert expected({'JAX_PLATFORMS': 'cuda,cpu'}, installed=False)
  assert expected({'JAX_PLATFORMS': ' tpu '}, installed=False)
  # ... else an installed plugin with its device
  assert expected({}, installed=True) and not expected({'JAX_PLATFORMS': ''}, installed=False)
  find_spec, plugins = importlib.util.find_spec, []
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'libtpu' else find_spec(name, *a))
  monkeypatch.setattr(importlib.metadata, 'entry_points',
                      lambda group: plugins if group == 'jax_plugins' else [])
  device = tmp_path / 'nvidia0'
  device.touch()
  monkeypatch.setattr(malloc_tunables, 'ACCELERATOR_DEVICES', (str(device),))
  assert not malloc_tunables.accelerator_installed()  # a device file but no plugin
  plugins.append(importlib.metadata.EntryPoint('xla_cuda12', 'jax_cuda12_plugin', 'jax_plugins'))
  assert malloc_tunables.accelerator_installed()
  device.unlink()
  assert not malloc_tunables.accelerator_installed()  # a plugin but no device


@pytest.mark.skipif(not (malloc_tunables.glibc_version() or (0,)) >= (2, 35),
                    reason='needs glibc >= 2.35')
def test_restart_once_with_the_tunables_then_no_faults():
  lines = _run()
  first, second, reused = lines[0].split(), lines[1].split(), lines[2].split()
  # the same process (pid), restarted once with the same command, now with the tunables
  assert first[0] == second[0] == 'start' and first[1] == second[1], lines
  assert first[2] == 'None' and second[2] == ALL, lines
  # the freed 256 MiB came back without faulting its 65536 pages in again; so did XLA's
  assert int(reused[1]) < 1000 and int(lines[3].split()[1]) < 1000, lines
  opted_out = _run(JSEG_MALLOC_TUNABLES='0')
  assert opted_out[0].split()[2] == 'None' and opted_out[1].startswith('second'), opted_out
  # unmapped at free, faulted anew
  assert int(opted_out[1].split()[1]) >= 60000 and int(opted_out[2].split()[1]) >= 16000, opted_out
