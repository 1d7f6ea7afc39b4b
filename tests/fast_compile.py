"""The environment for a test's subprocesses that compile much and compute little.

XLA:CPU without its backend (LLVM) optimizations compiles several times faster: the faults
test of 2 x 2 processes took 133 s instead of 232. For tests of behaviour (resume, preemption,
multi-device equality, the tools, the docs' commands) whose runs all compile this way, never
for speed or for numbers compared with a run compiled otherwise.
"""
import os

FLAGS = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'


def env(**variables) -> dict:
  """``os.environ`` with ``variables`` and the flags appended to XLA_FLAGS."""
  flags = variables.pop('XLA_FLAGS', os.environ.get('XLA_FLAGS', ''))
  return dict(os.environ, **variables, XLA_FLAGS=f'{flags} {FLAGS}'.strip())
