"""Compilation for tests that compile much and compute little.

XLA:CPU without its backend (LLVM) optimizations compiles about twice as fast and runs the
compiled code up to twice as slow: the faults test of 2 x 2 processes took 133 s instead of 232,
an HRNet parity test 34 s instead of 58 (measured 2026-12-03), while a 600-iteration training
run slowed by 60% and the float64 trajectories by 10%. The same HLO either way: only its code
generation differs, so values change at rounding level. For tests of behaviour (resume,
preemption, the tools, the docs' commands) and of one forward or step against MMSeg, never for
speed or for numbers compared with a run compiled otherwise.
"""
import os

import jax

OPTIONS = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}
FLAGS = ' '.join(f'--{k}={str(v).lower()}' for k, v in OPTIONS.items())


def jit(fun, **kwargs):
  """``jax.jit`` compiling ``fun`` with :data:`OPTIONS`."""
  return jax.jit(fun, compiler_options=OPTIONS, **kwargs)


def env(**variables) -> dict:
  """``os.environ`` with ``variables`` and the flags appended to XLA_FLAGS."""
  flags = variables.pop('XLA_FLAGS', os.environ.get('XLA_FLAGS', ''))
  return dict(os.environ, **variables, XLA_FLAGS=f'{flags} {FLAGS}'.strip())
