"""Rehearse a multi-host run on one machine: N local processes of ``jseg.main``, each with its
own CPU devices, joined by ``jax.distributed`` (gloo collectives), as hosts of a cluster are.

    python launch/local.py --processes=2 --devices=2 -- \\
        --config=configs/fcn.py:r18w16-d8_64x64_2k_synthetic --workdir=/tmp/fcn_2x2

Every argument after ``--`` goes to each process. SIGTERM or SIGINT is passed on to every
process as SIGTERM (JAX's preemption service then stops them at one common step, with a
checkpoint); if one process fails, the others are ended, since they would wait for it forever.
Exits with the first non-zero exit code, else 0.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def commands(processes: int, port: int, args) -> list:
  """One ``python -m jseg.main`` command line per process."""
  return [[sys.executable, '-m', 'jseg.main', '--distributed',
           f'--coordinator_address=localhost:{port}', f'--num_processes={processes}',
           f'--process_id={i}', *args] for i in range(processes)]


def environment(devices: int) -> dict:
  """Each process's environment: ``devices`` CPU devices and gloo for the collectives."""
  flags = os.environ.get('XLA_FLAGS', '')
  return dict(os.environ, JAX_PLATFORMS='cpu', JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo',
              XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count={devices}'.strip())


def run(processes: int, devices: int, args) -> int:
  env = environment(devices)
  procs = [subprocess.Popen(cmd, env=env) for cmd in commands(processes, free_port(), args)]

  def forward(signum, frame):
    del signum, frame
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGTERM)

  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGINT, forward)
  while any(p.poll() is None for p in procs):
    if any(p.returncode not in (None, 0) for p in procs):  # a failed process: end the others
      for p in procs:
        if p.poll() is None:
          p.kill()
    time.sleep(0.1)
  failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode]
  for i, code in failed:
    print(f'launch/local.py: process {i} exited with {code}', file=sys.stderr)
  if not failed:
    return 0
  code = failed[0][1]
  return code if code > 0 else 128 - code  # killed by a signal: as a shell reports it


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   usage='%(prog)s [--processes N] [--devices D] -- JSEG_MAIN_ARGS')
  parser.add_argument('--processes', type=int, default=2, help='processes (the "hosts")')
  parser.add_argument('--devices', type=int, default=1, help='CPU devices of each process')
  argv = sys.argv[1:] if argv is None else argv
  split = argv.index('--') if '--' in argv else len(argv)
  options = parser.parse_args(argv[:split])
  if options.processes < 1 or options.devices < 1:
    parser.error('--processes and --devices must be at least 1')
  return run(options.processes, options.devices, argv[split + 1:])


if __name__ == '__main__':
  sys.exit(main())
