"""Files from the web, downloaded once into ``$JSEG_CACHE`` (default ``~/.cache/jseg``): with a
progress bar, written atomically, checked against the sha256 prefix that torch.hub's and
OpenMMLab's file names carry (``name-<sha256 prefix>.pth``)."""
import hashlib
import http.client
import os
import re
import tempfile
import urllib.request
from typing import Optional

from tqdm import tqdm

_HASH = re.compile(r'-([a-f0-9]{8,})\.')  # torch.hub's convention: name-<sha256 prefix>.pth
_CHUNK = 1 << 20


def cache_dir() -> str:
  return os.path.expanduser(os.environ.get('JSEG_CACHE', os.path.join('~', '.cache', 'jseg')))


def fetch(url: str, directory: Optional[str] = None, progress: bool = True) -> str:
  """Local path of ``url``, downloaded into ``directory`` (default :func:`cache_dir`) on first
  use: written to a temporary file, checked against the file name's sha256 prefix, then renamed,
  so that an interrupted or corrupt download never counts."""
  directory = directory or cache_dir()
  path = os.path.join(directory, os.path.basename(url.split('?')[0]))
  if os.path.isfile(path):
    return path
  os.makedirs(directory, exist_ok=True)
  expected = _HASH.search(os.path.basename(path))
  digest = hashlib.sha256()
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.download-')
  try:
    with os.fdopen(fd, 'wb') as out:
      try:
        with urllib.request.urlopen(url, timeout=60) as response:
          total = int(response.headers.get('Content-Length') or 0) or None
          with tqdm(total=total, unit='B', unit_scale=True, desc=os.path.basename(path),
                    disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
              out.write(chunk)
              digest.update(chunk)
              bar.update(len(chunk))
      except (OSError, http.client.HTTPException) as e:
        raise OSError(f'cannot download {url} ({e!r}); without network, put the file at '
                      f'{path}') from e
    if total is not None and os.path.getsize(tmp) != total:
      raise OSError(f'download of {url} is truncated: {os.path.getsize(tmp)} of {total} bytes')
    if expected and not digest.hexdigest().startswith(expected.group(1)):
      raise OSError(f'download of {url} is corrupt: sha256 {digest.hexdigest()[:16]}..., '
                    f'the file name says {expected.group(1)}')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path
