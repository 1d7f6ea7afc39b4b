import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite('parity')  # the shared harness's asserts explain themselves


def _pin_worker(workerinput):
  """Gives xdist worker ``workerinput`` its own share of this process's CPUs, and sizes torch's
  OpenMP pool to it: XLA's and torch's thread pools otherwise each span every core, and the
  workers' threads contend (test_parity_classic.py on 2 cores, 2 workers: 188 s -> 107 s). The
  processes a test starts inherit the share."""
  cpus = sorted(os.sched_getaffinity(0))
  count, index = workerinput['workercount'], int(workerinput['workerid'][2:])
  share = cpus[index::count] if count <= len(cpus) else [cpus[index % len(cpus)]]
  os.sched_setaffinity(0, share)
  os.environ.setdefault('OMP_NUM_THREADS', str(len(share)))


def pytest_configure(config):
  """One JAX compilation cache for the session, shared by the xdist workers and the jseg.main
  processes that tests start: a train step compiled by one run is loaded by the next (JAX's
  persistent cache, the same executable, so results are unchanged). Every program is cached,
  also those compiled in under JAX's default threshold of 1 s: a jseg.main run compiles ~40 such
  small ones (5 of its 24 s in the faults tests' runs, measured)."""
  if hasattr(config, 'workerinput'):
    _pin_worker(config.workerinput)
    return  # the cache is the controller's, inherited
  if 'JAX_COMPILATION_CACHE_DIR' in os.environ:
    return  # a cache the user chose
  config.jseg_xla_cache = tempfile.mkdtemp(prefix='jseg-tests-xla-')
  os.environ.update(JAX_COMPILATION_CACHE_DIR=config.jseg_xla_cache,
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')


def pytest_unconfigure(config):
  if getattr(config, 'jseg_xla_cache', None):
    shutil.rmtree(config.jseg_xla_cache, ignore_errors=True)
    for name in ('JAX_COMPILATION_CACHE_DIR', 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'):
      del os.environ[name]


@pytest.fixture(autouse=True, scope='module')
def _free_compiled_programs():
  """Drops JAX's in-memory caches after each test module: a worker holds each module's
  executables only while it runs (they reached 10 GB per worker over the suite)."""
  yield
  import gc
  import jax
  jax.clear_caches()
  gc.collect()


@pytest.fixture
def server(tmp_path):
  """An HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; counts GET requests."""
  root = tmp_path / 'www'
  root.mkdir()
  gets = []

  class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
      gets.append(self.path)
      if self.path.startswith('/truncated/'):  # promises more bytes than it sends
        self.send_response(200)
        self.send_header('Content-Length', '1000')
        self.end_headers()
        self.wfile.write(b'x' * 10)
        return
      super().do_GET()

    def log_message(self, *args):
      pass

  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(
      Handler, directory=str(root)))
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  yield f'http://127.0.0.1:{httpd.server_address[1]}', root, gets
  httpd.shutdown()
  httpd.server_close()
