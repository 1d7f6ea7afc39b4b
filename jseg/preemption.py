"""Stopping a run cleanly when the scheduler asks: SIGTERM or SIGINT ends the current step,
the loop saves a checkpoint there and returns; the same command resumes it.

One process: the signal is recorded here, and a second one exits at once (the default
action). Several processes (``jax.distributed``): JAX's preemption service receives SIGTERM
(SIGINT keeps its default) and :func:`jax.experimental.multihost_utils.reached_preemption_sync_point` names one step at
which every process stops, so their checkpoints agree.
"""
import os
import signal
from typing import Optional

import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal:
  """Context manager: ``stop.requested(step)`` is True at the step where the loop must stop."""

  def __init__(self):
    self.received: Optional[str] = None
    self._previous = {}
    self._multi_process = jax.process_count() > 1

  def __enter__(self):
    # With several processes JAX's own SIGTERM handler feeds the preemption sync point.
    for sig in () if self._multi_process else SIGNALS:
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum, frame):
    del frame
    if self.received:  # asked twice: do not wait for the step and the save
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
    self.received = signal.Signals(signum).name

  def requested(self, step: int) -> bool:
    """Whether to stop after ``step``; called by every process at every step."""
    if self._multi_process:
      if multihost_utils.reached_preemption_sync_point(step):
        self.received = 'a preemption notice'
        return True
      return False
    return self.received is not None
