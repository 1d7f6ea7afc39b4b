"""PyTorch ``.pth`` files read without torch, as data: no code from the file ever runs.

    checkpoint = pth.load('pspnet_r50-d8_512x1024_80k_cityscapes_20200605_003338-2966598c.pth')

All three of torch's containers, told apart by their first bytes: the **zip** archive
(torch >= 1.6), the **legacy stream** (``_use_new_zipfile_serialization=False``; OpenMMLab's
2019-2020 backbones) and the **tar** archive (torch < 0.4; torchvision's first ResNets).
Tensors come back as numpy arrays (bfloat16 through ml_dtypes), bit for bit what torch loads.

jseg's own unpickler (torch's needs torch, and its allowlist is torch's to change): the stream
may name only the globals in :data:`ALLOWED`, and each maps to an inert stand-in here that
builds a record; arrays are made after unpickling, from the records, with every shape, stride
and offset checked against its storage. Anything else raises :class:`PthError` naming the
file and the global, before anything was built from it.
"""
import collections
import contextlib
import io
import os
import pickle
import struct
import tarfile
import zipfile
from typing import BinaryIO, Callable, Dict, Union

import ml_dtypes
import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001

# torch's storage classes and dtypes -> numpy dtypes (quantized types have no numpy twin).
_DTYPES = {
    'Double': np.float64, 'Float': np.float32, 'Half': np.float16,
    'BFloat16': ml_dtypes.bfloat16, 'Long': np.int64, 'Int': np.int32, 'Short': np.int16,
    'Char': np.int8, 'Byte': np.uint8, 'Bool': np.bool_, 'ComplexFloat': np.complex64,
    'ComplexDouble': np.complex128,
}
_TORCH_DTYPES = {
    'float64': np.float64, 'double': np.float64, 'float32': np.float32, 'float': np.float32,
    'float16': np.float16, 'half': np.float16, 'bfloat16': ml_dtypes.bfloat16,
    'int64': np.int64, 'long': np.int64, 'int32': np.int32, 'int': np.int32, 'int16': np.int16,
    'short': np.int16, 'int8': np.int8, 'uint8': np.uint8, 'uint16': np.uint16,
    'uint32': np.uint32, 'uint64': np.uint64, 'bool': np.bool_, 'complex64': np.complex64,
    'complex128': np.complex128, 'float8_e4m3fn': ml_dtypes.float8_e4m3fn,
    'float8_e5m2': ml_dtypes.float8_e5m2,
}
# numpy dtypes a pickled numpy array or scalar may have (no objects, no records).
_NUMPY_KINDS = frozenset('?bBhHiIlLqQefdgFDG') | {
    f'{k}{n}' for k, sizes in (('b', (1,)), ('i', (1, 2, 4, 8)), ('u', (1, 2, 4, 8)),
                               ('f', (2, 4, 8)), ('c', (8, 16))) for n in sizes}


class PthError(ValueError):
  """A file that is not a readable PyTorch checkpoint, or that asks for more than data."""


class _Refused(pickle.UnpicklingError):
  """Raised inside the unpickler; :func:`load` adds the file's name."""


class _Inert:
  """Base of every stand-in: pickle's BUILD cannot set attributes on it (or on its class)."""
  __slots__ = ()

  def __setstate__(self, state):
    raise _Refused(f'BUILD on {type(self).__name__[1:]} is not data')


class _Marker(_Inert):
  """A global that is a name only (a storage class, a dtype, ``torch.Tensor``)."""
  __slots__ = ('name', 'dtype')

  def __init__(self, name, dtype=None):
    object.__setattr__(self, 'name', name)
    object.__setattr__(self, 'dtype', dtype)

  def __repr__(self):
    return self.name


class _Storage(_Inert):
  """A storage named by a persistent id; its bytes are read after unpickling."""
  __slots__ = ('key', 'dtype', 'numel', 'offset')

  def __init__(self, key, dtype, numel, offset=0):
    self.key, self.dtype, self.numel, self.offset = key, dtype, numel, offset


class _Tensor(_Inert):
  """``torch._utils._rebuild_tensor(_v2)``: a view of a storage."""
  __slots__ = ('storage', 'offset', 'size', 'stride')

  def __init__(self, storage, offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
      raise _Refused(f'a tensor of {type(storage).__name__}, not of a storage')
    for what, value in (('size', size), ('stride', stride)):
      if not (isinstance(value, tuple) and all(type(n) is int and n >= 0 for n in value)):
        raise _Refused(f'tensor {what} {value!r} is not a tuple of non-negative ints')
    if type(offset) is not int or offset < 0 or len(size) != len(stride):
      raise _Refused(f'tensor offset {offset!r}, size {size!r}, stride {stride!r}')
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _TensorV3(_Inert):
  """``torch._utils._rebuild_tensor_v3``: the dtype given apart (an untyped storage)."""

  def __new__(cls, storage, offset, size, stride, requires_grad, hooks, dtype, *unused):
    if not (isinstance(dtype, _Marker) and dtype.dtype is not None):
      raise _Refused(f'tensor dtype {dtype!r}')
    if not isinstance(storage, _Storage):
      raise _Refused(f'a tensor of {type(storage).__name__}, not of a storage')
    return _Tensor(_Storage(storage.key, dtype.dtype, None, storage.offset), offset, size, stride)


class _Parameter(_Inert):
  """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself."""

  def __new__(cls, data, *unused):
    if not isinstance(data, _Tensor):
      raise _Refused(f'a Parameter of {type(data).__name__}')
    return data


class _FromType(_Inert):
  """``torch._tensor._rebuild_from_type_v2(func, type, args, state)``: ``func(*args)``."""

  def __new__(cls, func, new_type, args, state=None):
    if func not in (_Tensor, _TensorV3, _Parameter) or not isinstance(args, tuple):
      raise _Refused(f'_rebuild_from_type_v2 of {func!r}')
    if not (isinstance(new_type, _Marker) and new_type.name in _TENSOR_TYPES):
      raise _Refused(f'_rebuild_from_type_v2 to {new_type!r}')
    return func(*args)


class _DType(_Inert):
  """``numpy.dtype(spec, align, copy)`` with BUILD's ``(version, byteorder, ...)`` state."""
  __slots__ = ('spec', 'byteorder')

  def __init__(self, spec, align=False, copy=True):
    if not (isinstance(spec, str) and spec in _NUMPY_KINDS):
      raise _Refused(f'numpy dtype {spec!r} (only numeric dtypes are data)')
    self.spec, self.byteorder = spec, '='

  def __setstate__(self, state):
    if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in '<>|='
            and state[2:5] == (None, None, None)):
      raise _Refused(f'numpy dtype state {state!r}')
    self.byteorder = state[1]

  def numpy(self):
    return np.dtype(self.spec).newbyteorder(self.byteorder)


class _NdarrayRecord(_Inert):
  """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` and its BUILD state."""
  __slots__ = ('state',)

  def __init__(self, cls, shape, typecode):
    if not (isinstance(cls, _Marker) and cls.name == 'numpy.ndarray'):
      raise _Refused(f'numpy _reconstruct of {cls!r}')
    self.state = None

  def __setstate__(self, state):
    self.state = state

  def numpy(self):
    try:
      _, shape, dtype, fortran, data = self.state
    except (TypeError, ValueError):
      raise _Refused(f'numpy array state {self.state!r}') from None
    if not (isinstance(dtype, _DType) and isinstance(data, bytes) and isinstance(shape, tuple)
            and all(type(n) is int and n >= 0 for n in shape)):
      raise _Refused('numpy array state is not a numeric dtype, a shape and bytes')
    dtype = dtype.numpy()
    if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
      raise _Refused(f'numpy array of shape {shape} holds {len(data)} bytes')
    array = np.frombuffer(data, dtype).reshape(shape, order='F' if fortran else 'C')
    return array.astype(dtype.newbyteorder('='))  # a copy, in this machine's order (as numpy)


class _Scalar(_Inert):
  """``numpy.core.multiarray.scalar(dtype, bytes)``."""

  def __new__(cls, dtype, data):
    if not (isinstance(dtype, _DType) and isinstance(data, bytes)):
      raise _Refused('numpy scalar is not a numeric dtype and bytes')
    dtype = dtype.numpy()
    if len(data) != dtype.itemsize:
      raise _Refused(f'numpy scalar of {dtype} holds {len(data)} bytes')
    return np.frombuffer(data, dtype)[0]


class _Encode(_Inert):
  """``_codecs.encode(text, 'latin1')``: how protocol 2 stores bytes."""

  def __new__(cls, text, encoding='utf-8'):
    if not (isinstance(text, str) and encoding in ('latin1', 'latin-1')):
      raise _Refused(f'_codecs.encode({type(text).__name__}, {encoding!r})')
    return text.encode('latin1')


class _Size(_Inert):
  """``torch.Size(values)``: a tuple."""

  def __new__(cls, values=()):
    if not all(type(n) is int for n in values):
      raise _Refused(f'torch.Size({values!r})')
    return tuple(values)


class _Device(_Inert):
  """``torch.device(type[, index])``: its string."""

  def __new__(cls, kind, index=None):
    if not isinstance(kind, str) or not (index is None or type(index) is int):
      raise _Refused(f'torch.device({kind!r}, {index!r})')
    return kind if index is None else f'{kind}:{index}'


class _OrderedDict(collections.OrderedDict):
  """``collections.OrderedDict``; BUILD may give it torch's ``_metadata`` and nothing else."""

  def __setstate__(self, state):
    if not (isinstance(state, dict) and set(state) <= {'_metadata'}):
      raise _Refused(f'OrderedDict attributes {list(state) if isinstance(state, dict) else state}')
    self.__dict__.update(state)


class Metadata:
  """What a checkpoint's metadata class (mmengine's ``HistoryBuffer``) becomes: its pickled
  attributes, in ``vars()``, and none of its code."""

  def __init__(self, *args):
    pass

  def __setstate__(self, state):
    if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
      raise _Refused('metadata state is not a dict of attributes')
    self.__dict__.update(state)


class _MethodName(_Inert):
  """``getattr(HistoryBuffer, name)`` (how mmengine pickles its statistics methods): the name."""

  def __new__(cls, owner, name):
    if owner is not Metadata or not isinstance(name, str):
      raise _Refused(f'getattr of {owner!r}: only metadata method names are data')
    return name


_TENSOR_TYPES = ('torch.Tensor', 'torch.nn.parameter.Parameter')
# (module, name) -> stand-in: the whole of what a checkpoint's pickles may name.
ALLOWED: Dict[tuple, object] = {
    ('collections', 'OrderedDict'): _OrderedDict,
    ('builtins', 'set'): set, ('builtins', 'frozenset'): frozenset,
    ('builtins', 'complex'): complex, ('_codecs', 'encode'): _Encode,
    ('torch._utils', '_rebuild_tensor'): _Tensor, ('torch._utils', '_rebuild_tensor_v2'): _Tensor,
    ('torch._utils', '_rebuild_tensor_v3'): _TensorV3,
    ('torch._utils', '_rebuild_parameter'): _Parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _Parameter,
    ('torch._tensor', '_rebuild_from_type_v2'): _FromType,
    ('torch', 'Size'): _Size, ('torch', 'device'): _Device,
    ('numpy', 'ndarray'): _Marker('numpy.ndarray'), ('numpy', 'dtype'): _DType,
    ('mmengine.logging.history_buffer', 'HistoryBuffer'): Metadata,
    ('builtins', 'getattr'): _MethodName,
    **{(f'numpy.{core}.multiarray', name): stand_in for core in ('core', '_core')
       for name, stand_in in (('_reconstruct', _NdarrayRecord), ('scalar', _Scalar))},
    **{(module, name): _Marker(f'{module}.{name}') for module, name in
       (t.rsplit('.', 1) for t in _TENSOR_TYPES)},
    **{('torch', f'{kind}Storage'): _Marker(f'torch.{kind}Storage', np.dtype(dtype))
       for kind, dtype in _DTYPES.items()},
    **{('torch', f'{kind}Tensor'): _Marker(f'torch.{kind}Tensor', np.dtype(dtype))
       for kind, dtype in _DTYPES.items()},
    **{(module, 'UntypedStorage'): _Marker('torch.UntypedStorage', np.dtype(np.uint8))
       for module in ('torch', 'torch.storage')},
    **{('torch', name): _Marker(f'torch.{name}', np.dtype(dtype))
       for name, dtype in _TORCH_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
  """pickle's unpickler limited to :data:`ALLOWED`; persistent ids go to ``persistent``."""

  def __init__(self, file, persistent: Callable = None):
    super().__init__(file, encoding='utf-8')  # torch.load's
    self._persistent = persistent

  def find_class(self, module, name):
    module = 'builtins' if module == '__builtin__' else module  # protocol 2's name for it
    if (module, name) not in ALLOWED:
      raise _Refused(f'global {module}.{name}')
    return ALLOWED[module, name]

  def persistent_load(self, pid):
    if self._persistent is None:
      raise _Refused(f'persistent id {pid!r} where none belongs')
    return self._persistent(pid)


def _unpickle(file, persistent=None):
  return _Unpickler(file, persistent).load()


def _name(value) -> str:
  return value.decode('ascii') if isinstance(value, bytes) else value


class _Storages:
  """The storages that persistent ids name, by key, read once each."""

  def __init__(self):
    self.records: Dict[str, _Storage] = {}
    self.data: Dict[str, np.ndarray] = {}

  def add(self, key, storage_type, numel) -> _Storage:
    if not (isinstance(storage_type, _Marker) and storage_type.dtype is not None
            and storage_type.name.endswith('Storage')):
      raise _Refused(f'storage type {storage_type!r}')
    if type(numel) is not int or numel < 0:
      raise _Refused(f'storage {key!r} of {numel!r} elements')
    key = str(_name(key))
    known = self.records.setdefault(key, _Storage(key, storage_type.dtype, numel))
    if (known.dtype, known.numel) != (storage_type.dtype, numel):
      raise _Refused(f'storage {key!r} named twice with other types or sizes')
    return known

  def zip_pid(self, pid):
    """``('storage', type, key, location, numel)``."""
    if not (isinstance(pid, tuple) and len(pid) == 5 and _name(pid[0]) == 'storage'):
      raise _Refused(f'persistent id {pid!r}')
    return self.add(pid[2], pid[1], pid[4])

  def legacy_pid(self, pid):
    """``('storage', type, root key, location, numel, view)``; view = (key, offset, numel)."""
    if not (isinstance(pid, tuple) and len(pid) == 6 and _name(pid[0]) == 'storage'):
      raise _Refused(f'persistent id {pid!r}')
    root = self.add(pid[2], pid[1], pid[4])
    if pid[5] is None:
      return root
    _, offset, numel = pid[5]
    if not (type(offset) is int and type(numel) is int and 0 <= offset
            and offset + numel <= root.numel):
      raise _Refused(f'storage view {pid[5]!r} outside storage {root.key!r}')
    return _Storage(root.key, root.dtype, numel, offset)

  def read(self, key: str, dtype: np.dtype, read_into: Callable, byteorder: str = 'little'):
    """Reads storage ``key`` with ``read_into(buffer) -> bytes read`` into its array."""
    record = self.records[key]
    data = np.empty(record.numel, dtype)
    view = data.view(np.uint8)
    if read_into(view) != view.size:
      raise _Refused(f'storage {key!r} is truncated ({record.numel} elements of {dtype})')
    if byteorder != 'little' and dtype.itemsize > 1:
      unit = dtype.itemsize // (2 if dtype.kind == 'c' else 1)
      data.view(f'u{unit}').byteswap(inplace=True)
    self.data[key] = data

  def tensor(self, t: _Tensor) -> np.ndarray:
    key = t.storage.key
    if key not in self.data:
      raise _Refused(f'storage {key!r} has no data')
    storage = self.data[key]
    if t.storage.dtype != storage.dtype:
      storage = storage.view(t.storage.dtype)  # _rebuild_tensor_v3 on an untyped storage
    if 0 in t.size:
      return np.empty(t.size, storage.dtype)
    start = t.storage.offset + t.offset
    last = start + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    end = t.storage.offset + (t.storage.numel if t.storage.numel is not None
                              else storage.size - t.storage.offset)
    if last >= min(end, storage.size):
      raise _Refused(f'tensor of size {t.size}, stride {t.stride}, offset {t.offset} '
                     f'reaches past storage {key!r} of {storage.size} elements')
    count = int(np.prod(t.size, dtype=np.int64))
    contiguous = tuple(int(np.prod(t.size[i + 1:], dtype=np.int64)) for i in range(len(t.size)))
    if all(s == c or n == 1 for n, s, c in zip(t.size, t.stride, contiguous)):
      return storage[start:start + count].reshape(t.size)
    raw = storage[start:].view(f'V{storage.itemsize}')  # as_strided lacks some ml_dtypes
    return np.lib.stride_tricks.as_strided(
        raw, t.size, [s * storage.itemsize for s in t.stride], writeable=False
    ).copy().view(storage.dtype)


def _resolve(obj, storages: _Storages, memo: dict):
  """``obj`` with every record replaced by what it stands for (arrays, dtypes)."""
  if id(obj) in memo:
    return memo[id(obj)]
  if isinstance(obj, _Tensor):
    out = memo[id(obj)] = storages.tensor(obj)
  elif isinstance(obj, _Storage):  # a storage saved as itself: its elements
    numel = obj.numel if obj.numel is not None else 0
    out = memo[id(obj)] = storages.tensor(_Tensor(obj, 0, (numel,), (1,)))
  elif isinstance(obj, (_NdarrayRecord, _DType)):
    out = memo[id(obj)] = obj.numpy()
  elif isinstance(obj, dict):
    out = memo[id(obj)] = collections.OrderedDict() if isinstance(obj, _OrderedDict) else {}
    for k, v in obj.items():
      out[_resolve(k, storages, memo)] = _resolve(v, storages, memo)
    if isinstance(obj, _OrderedDict) and '_metadata' in vars(obj):
      out._metadata = _resolve(obj._metadata, storages, memo)
  elif isinstance(obj, list):
    out = memo[id(obj)] = []
    out.extend(_resolve(v, storages, memo) for v in obj)
  elif isinstance(obj, (tuple, set, frozenset)):
    out = memo[id(obj)] = type(obj)(_resolve(v, storages, memo) for v in obj)
  elif isinstance(obj, Metadata):
    out = memo[id(obj)] = obj
    obj.__dict__.update({k: _resolve(v, storages, memo) for k, v in vars(obj).items()})
  else:
    out = obj
  return out


def _read_exact(file: BinaryIO, n: int, what: str) -> bytes:
  data = file.read(n)
  if len(data) != n:
    raise _Refused(f'{what} is truncated')
  return data


def _load_zip(file: BinaryIO):
  with zipfile.ZipFile(file) as archive:
    names = archive.namelist()
    roots = [n[:-len('data.pkl')] for n in names
             if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(roots) != 1:
      raise _Refused(f'a zip file with {len(roots)} */data.pkl records, not a torch checkpoint')
    root = roots[0]
    byteorder = 'little'
    if f'{root}byteorder' in names:
      byteorder = archive.read(f'{root}byteorder').decode('ascii', 'replace').strip()
      if byteorder not in ('little', 'big'):
        raise _Refused(f'byteorder {byteorder!r}')
    storages = _Storages()
    with archive.open(f'{root}data.pkl') as f:
      obj = _unpickle(f, storages.zip_pid)
    for key, record in storages.records.items():
      name = f'{root}data/{key}'
      if name not in names:
        raise _Refused(f'storage {key!r} has no record {name}')
      size = archive.getinfo(name).file_size
      if size != record.numel * record.dtype.itemsize:
        raise _Refused(f'storage record {name} has {size} bytes, its tensors need '
                       f'{record.numel} x {record.dtype.itemsize}')
      with archive.open(name) as f:
        storages.read(key, record.dtype, f.readinto, byteorder)
  return obj, storages


def _load_legacy(file: BinaryIO):
  if _unpickle(file) != LEGACY_MAGIC:
    raise _Refused('a pickle stream without torch\'s magic number')
  if _unpickle(file) != LEGACY_PROTOCOL:
    raise _Refused('an unknown legacy protocol version')
  _unpickle(file)  # sys_info: endianness and type sizes (the data are little-endian)
  storages = _Storages()
  obj = _unpickle(file, storages.legacy_pid)
  keys = _unpickle(file)
  if not (isinstance(keys, list) and sorted(map(str, keys)) == sorted(storages.records)):
    raise _Refused(f'storage keys {keys!r} are not the pickle\'s '
                   f'{sorted(storages.records)}')
  for key in keys:
    record = storages.records[str(key)]
    count, = struct.unpack('<q', _read_exact(file, 8, f'storage {key!r}'))
    if count != record.numel:
      raise _Refused(f'storage {key!r} holds {count} elements, its tensors need {record.numel}')
    storages.read(str(key), record.dtype, file.readinto)
  return obj, storages


def _load_tar(file: BinaryIO):
  storages, tensors = _Storages(), {}
  with tarfile.open(fileobj=file, mode='r:') as archive:
    def member(name):
      try:
        return archive.extractfile(name)
      except KeyError:
        raise _Refused(f'a tar file without a {name!r} member') from None
    _unpickle(member('sys_info'))
    f = member('storages')
    for _ in range(_count(_unpickle(f), 'storages')):
      key, _, storage_type = _unpickle(f)
      count, = struct.unpack('<q', _read_exact(f, 8, f'storage {key!r}'))
      record = storages.add(key, storage_type, count)
      storages.read(record.key, record.dtype, f.readinto)
    for target, root, offset, numel in _unpickle(f):  # storage views
      base = storages.records.get(str(root))
      if not (base and type(offset) is int and type(numel) is int and offset >= 0
              and offset + numel <= base.numel):
        raise _Refused(f'storage view {target!r} of {root!r} outside its storage')
      storages.records[str(target)] = _Storage(base.key, base.dtype, numel, offset)
    f = member('tensors')
    for _ in range(_count(_unpickle(f), 'tensors')):
      key, storage_key, _ = _unpickle(f)
      storage = storages.records.get(str(storage_key))
      if storage is None:
        raise _Refused(f'tensor {key!r} of unknown storage {storage_key!r}')
      ndim, = struct.unpack('<i', _read_exact(f, 4, 'tensor header'))
      if not 0 <= ndim <= 64:
        raise _Refused(f'tensor {key!r} of {ndim} dimensions')
      _read_exact(f, 4, 'tensor header')
      size = struct.unpack(f'<{ndim}q', _read_exact(f, 8 * ndim, 'tensor sizes'))
      stride = struct.unpack(f'<{ndim}q', _read_exact(f, 8 * ndim, 'tensor strides'))
      offset, = struct.unpack('<q', _read_exact(f, 8, 'tensor offset'))
      tensors[str(key)] = _Tensor(storage, offset, size, stride)

    def persistent(pid):
      if isinstance(pid, (str, bytes, int)) and str(_name(pid)) in tensors:
        return tensors[str(_name(pid))]
      raise _Refused(f'persistent id {pid!r} (only tensors are data)')
    obj = _unpickle(member('pickle'), persistent)
  return obj, storages


def _count(n, what: str) -> int:
  if type(n) is not int or n < 0:
    raise _Refused(f'{n!r} {what}')
  return n


def container(head: bytes) -> str:
  """``'zip'``, ``'tar'`` or ``'legacy'`` of a file's first 512 bytes (ValueError otherwise)."""
  if head[:4] == b'PK\x03\x04':
    return 'zip'
  if head[257:262] == b'ustar':
    return 'tar'
  if head[:1] == b'\x80' and LEGACY_MAGIC.to_bytes(10, 'little') in head[:32]:
    return 'legacy'  # a pickle of the magic number, in any protocol
  raise ValueError('not a PyTorch checkpoint (no zip, tar or legacy torch.save header)')


_LOADERS = {'zip': _load_zip, 'tar': _load_tar, 'legacy': _load_legacy}


def load(source: Union[str, os.PathLike, BinaryIO]):
  """The object that ``torch.save`` wrote to ``source`` (a path or a binary file object),
  with numpy arrays for tensors. Raises :class:`PthError` naming the file for a file that is
  not a checkpoint, is damaged, or names anything that is not data."""
  name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(
      source, 'name', '<file object>')
  try:
    with (open(source, 'rb') if isinstance(source, (str, os.PathLike))
          else contextlib.nullcontext(source)) as file:  # a caller's file stays open
      head = file.read(512)
      file.seek(-len(head), io.SEEK_CUR)
      obj, storages = _LOADERS[container(head)](file)
      return _resolve(obj, storages, {})
  except OSError as e:
    raise PthError(f'{name}: cannot read it: {e}') from e
  except _Refused as e:
    raise PthError(f'{name}: refused {e}: jseg reads checkpoints as data and runs no code '
                   'from them; save the weights alone (torch.save(model.state_dict(), ...))') from e
  except (ValueError, TypeError, EOFError, KeyError, IndexError, AttributeError, OverflowError,
          MemoryError, RecursionError, struct.error, pickle.UnpicklingError, zipfile.BadZipFile,
          tarfile.TarError) as e:
    raise PthError(f'{name} is not a readable PyTorch checkpoint: {type(e).__name__}: {e}') from e
