"""jseg.pth, the torch-free .pth reader, against torch.load bit for bit: torch.save's zip and
legacy files, tar files in torch < 0.4's layout written here, big-endian zips and an MMSeg
state_dict; hostile files refused with no side effect, and damaged files refused by name."""
import collections
import io
import os
import pickle
import re
import struct
import tarfile
import zipfile

import ml_dtypes
import numpy as np
import pytest
import torch

from jseg import pth

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.int32,
          torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64)
STORAGE_TYPES = {dtype: getattr(torch, name)
                 for dtype, name in torch.storage._dtype_to_storage_type_map().items()}
ML_DTYPES = {torch.bfloat16: ml_dtypes.bfloat16, torch.float8_e4m3fn: ml_dtypes.float8_e4m3fn,
             torch.float8_e5m2: ml_dtypes.float8_e5m2}
SYSTEM = re.escape(f'{os.system.__module__}.system')  # what a pickle of os.system names


def _tensor(dtype, shape=(3, 5), seed=0):
  """Random values of ``dtype``; floats with a NaN, a -0.0 and an inf among them."""
  g = torch.Generator().manual_seed(seed)
  if dtype == torch.bool:
    return torch.rand(shape, generator=g) > 0.5
  if not (dtype.is_floating_point or dtype.is_complex):
    return torch.randint(0, 250, shape, generator=g).to(dtype)  # wraps in the signed types
  t = torch.randn(shape, generator=g, dtype=torch.complex64 if dtype.is_complex else None)
  t.view(-1)[:3] = torch.tensor([float('nan'), -0.0, float('inf')])
  return t.to(dtype)


def _content():
  """Every kind of value a checkpoint holds."""
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
  return {
      'dtypes': {str(d): _tensor(d) for d in DTYPES},
      'scalar': torch.tensor(-2.5, dtype=torch.float64),
      'transposed': _tensor(torch.float32, (4, 6), seed=1).t(),
      'transposed-bf16': _tensor(torch.bfloat16, (4, 6), seed=1).t(),
      'offset': base[1:, 2:], 'shared': [base, base.view(6, 4)[2:]],
      'expanded': torch.arange(3, dtype=torch.int32).reshape(3, 1).expand(3, 4),
      'param': torch.nn.Parameter(_tensor(torch.float32, (2, 3), seed=2)),
      'empty': torch.empty(0, 3), 'state_dict': model.state_dict(),
      'meta': {'f': np.float64(1.5), 'i': np.int64(-7), 'b': np.bool_(True),
               'a': np.arange(6, dtype=np.int16).reshape(2, 3),
               'fortran': np.asfortranarray(np.arange(6.0).reshape(2, 3)),
               'size': torch.Size([2, 3]), 'device': torch.device('cpu'),
               'cuda': torch.device('cuda', 1),
               'items': [1, 2.0, 1 - 2j, None, True, 'x', b'r', (3,), {4, 5}, frozenset({6})]},
  }


def _bytes(t):
  return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _assert_same(got, ref, at='checkpoint'):
  """``got`` (pth.load) is ``ref`` (torch.load) bit for bit: numpy arrays for tensors, tuples
  for torch.Size, strings for torch.device."""
  if isinstance(ref, torch.Tensor):
    ref = ref.detach()
    assert isinstance(got, np.ndarray) and got.shape == tuple(ref.shape), at
    assert got.dtype == (ML_DTYPES[ref.dtype] if ref.dtype in ML_DTYPES else ref.numpy().dtype), at
    if ref.dtype == torch.bfloat16:
      assert np.array_equal(got.view(np.uint16), ref.view(torch.int16).numpy().view(np.uint16)), at
    assert np.ascontiguousarray(got).tobytes() == _bytes(ref), at
  elif isinstance(ref, np.ndarray):
    assert type(got) is np.ndarray and (got.dtype, got.shape) == (ref.dtype, ref.shape), at
    assert got.tobytes() == ref.tobytes(), at
  elif isinstance(ref, dict):
    assert type(got) is type(ref) and list(got) == list(ref), at
    assert getattr(got, '_metadata', None) == getattr(ref, '_metadata', None), at
    for k in ref:
      _assert_same(got[k], ref[k], f'{at}[{k!r}]')
  elif isinstance(ref, (list, tuple)):
    assert type(got) is (tuple if isinstance(ref, torch.Size) else type(ref)), at
    assert len(got) == len(ref), at
    for i, (g, r) in enumerate(zip(got, ref)):
      _assert_same(g, r, f'{at}[{i}]')
  elif isinstance(ref, torch.device):
    assert got == str(ref), at
  else:
    assert type(got) is type(ref) and got == ref, at


def _save_tar(obj, path, views=False, sys_info=None, protocol=2):
  """Writes ``obj`` in torch < 0.4's tar layout, which torch.serialization's legacy_load reads;
  with ``views``, each tensor at an offset is a tensor of a storage view."""
  storages, tensors, storage_views = {}, {}, []  # by data_ptr, by id(tensor)

  class Pickler(pickle.Pickler):
    def persistent_id(self, t):
      if not isinstance(t, torch.Tensor):
        return None
      if id(t) not in tensors:
        s, offset = t.untyped_storage(), t.storage_offset()
        key = storages.setdefault(s.data_ptr(), (100 + len(storages), t.dtype, s))[0]
        if views and offset:
          storage_views.append((500 + len(storage_views), key, offset,
                                s.nbytes() // t.element_size() - offset))
          key, offset = storage_views[-1][0], 0
        tensors[id(t)] = (len(tensors), key, offset, t)
      return str(tensors[id(t)][0])

  dump = lambda value, f: pickle.dump(value, f, protocol=2)
  body, f, g = io.BytesIO(), io.BytesIO(), io.BytesIO()
  Pickler(body, protocol=protocol).dump(obj)
  dump(len(storages), f)
  for key, dtype, s in storages.values():
    dump((key, 'cpu', STORAGE_TYPES[dtype]), f)
    data = torch.empty(0, dtype=torch.uint8).set_(s).numpy().tobytes()
    f.write(struct.pack('<q', len(data) // dtype.itemsize) + data)
  dump(storage_views, f)
  dump(len(tensors), g)
  for key, storage_key, offset, t in tensors.values():
    dump((key, storage_key, getattr(torch, STORAGE_TYPES[t.dtype].__name__[:-7] + 'Tensor')), g)
    g.write(struct.pack(f'<i4x{2 * t.dim() + 1}q', t.dim(), *t.shape, *t.stride(), offset))
  sys_info = sys_info or dict(protocol_version=1001, little_endian=True,
                              type_sizes=dict(short=2, int=4, long=4))
  members = {'sys_info': pickle.dumps(sys_info, protocol=2), 'storages': f.getvalue(),
             'tensors': g.getvalue(), 'pickle': body.getvalue()}
  with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))


def _zip(path, data_pkl, storages=None):
  """A torch-style zip checkpoint of the given data.pkl and storage records."""
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', data_pkl)
    z.writestr('archive/byteorder', 'little')
    for key, data in (storages or {}).items():
      z.writestr(f'archive/data/{key}', data)
    z.writestr('archive/version', '3\n')


def _rezip(src, dst, edit):
  """Copies zip ``src`` to ``dst``, uncompressed, each record through ``edit`` (None: drop)."""
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
    for name in zin.namelist():
      data = edit(name.split('/', 1)[1], zin.read(name))
      if data is not None:
        zout.writestr(name, data)


def _data_pkl(offset, size, stride, pid=('storage', torch.FloatStorage, '0', 'cpu', 10)):
  """A data.pkl of {'w': a tensor of storage '0' (persistent id ``pid``, by default 10 float32s)
  at any offset, size and stride}."""
  storage, f = object(), io.BytesIO()

  class Pickler(pickle.Pickler):
    def persistent_id(self, value):
      return pid if value is storage else None

  class View:
    def __reduce__(self):
      return torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False,
                                               collections.OrderedDict())

  Pickler(f, protocol=2).dump({'w': View()})
  return f.getvalue()


@pytest.mark.parametrize('kind,protocol', [('zip', 2), ('zip', 4), ('legacy', 2), ('legacy', 4),
                                           ('zip-BytesIO', 2)])
def test_torch_save_round_trip(kind, protocol, tmp_path):
  """Read from the path, and from a file object (left open)."""
  path = io.BytesIO() if kind == 'zip-BytesIO' else tmp_path / 'checkpoint.pth'
  torch.save(_content(), path, pickle_protocol=protocol,
             _use_new_zipfile_serialization=kind != 'legacy')
  with (path if kind == 'zip-BytesIO' else open(path, 'rb')) as f:
    f.seek(0)
    got = pth.load(f)
    assert not f.closed
    f.seek(0)
    _assert_same(got, torch.load(f, weights_only=False))
  if kind != 'zip-BytesIO':
    _assert_same(pth.load(path), torch.load(path, weights_only=False))


@pytest.mark.parametrize('protocol', [2, 4])
def test_big_endian_numpy_array(protocol, tmp_path):
  torch.save({'a': np.arange(3, dtype='>i4')}, tmp_path / 'f.pth', pickle_protocol=protocol)
  _assert_same(pth.load(tmp_path / 'f.pth'), torch.load(tmp_path / 'f.pth', weights_only=False))


@pytest.mark.parametrize('dtype', [torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn,
                                   torch.float8_e5m2], ids=str)
def test_dtypes_without_a_storage_class(dtype, tmp_path):
  t = torch.arange(12).reshape(3, 4).to(dtype)
  torch.save({'w': t, 'transposed': t.t(), 'offset': t[1:, 1:]}, tmp_path / 'f.pth')
  _assert_same(pth.load(tmp_path / 'f.pth'), torch.load(tmp_path / 'f.pth', weights_only=False))


@pytest.mark.parametrize('views', [False, True], ids=['storages', 'storage-views'])
def test_tar_round_trip(views, tmp_path):
  content = _content()
  obj = {k: content[k] for k in ('scalar', 'transposed', 'offset', 'shared', 'state_dict')}
  obj.update({str(d): content['dtypes'][str(d)] for d in (torch.float32, torch.int64)})
  _save_tar(obj, tmp_path / 'old.pth', views=views)
  _assert_same(pth.load(tmp_path / 'old.pth'), torch.load(tmp_path / 'old.pth',
                                                          weights_only=False))


@pytest.fixture(scope='module')
def mmseg_state_dict():
  import mmseg_ref as ref
  return ref.random_mmseg_model(
      ref.mmseg_config('pspnet', 'r18-d8_512x1024_80k_cityscapes').model, seed=3).state_dict()


@pytest.mark.parametrize('kind', ['zip', 'legacy'])
def test_mmseg_state_dict(kind, mmseg_state_dict, tmp_path):
  path = tmp_path / 'pspnet.pth'
  torch.save({'meta': {'CLASSES': ('road', 'sidewalk'), 'PALETTE': [[128, 64, 128]], 'epoch': 80},
              'state_dict': mmseg_state_dict}, path, _use_new_zipfile_serialization=kind == 'zip')
  got, ref = pth.load(path), torch.load(path, weights_only=False)
  assert len(got['state_dict']) == len(mmseg_state_dict) > 100
  assert got['state_dict']._metadata == ref['state_dict']._metadata
  _assert_same(got, ref)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_big_endian_zip(dtype, tmp_path):
  """A zip whose byteorder record says 'big', its storage byteswapped per element."""
  little, big = tmp_path / 'little.pth', tmp_path / 'big.pth'
  value = _tensor(dtype, (2, 3))
  torch.save(value, little)
  unit = dtype.itemsize // (2 if dtype.is_complex else 1)
  swap = {'byteorder': lambda data: b'big',
          'data/0': lambda data: np.frombuffer(data, f'u{unit}').byteswap().tobytes()}
  _rezip(little, big, lambda name, data: swap.get(name, bytes)(data))
  ref = torch.load(big, weights_only=False)
  assert _bytes(ref) == _bytes(value)
  _assert_same(pth.load(big), ref)


class _Run:
  """Runs ``call(command)`` when unpickled: what a hostile checkpoint does."""

  def __init__(self, command, call=os.system):
    self.command, self.call = command, call

  def __reduce__(self):
    return self.call, (self.command,)


def _header(*pickles):
  """The start of a legacy file: torch's magic number, then ``pickles`` (bytes as they are)."""
  return b''.join(p if isinstance(p, bytes) else pickle.dumps(p, protocol=2)
                  for p in (pth.LEGACY_MAGIC, *pickles))


# Hostile files (each writes one at `path` that runs `cmd` when unpickled) -> what pth refuses.
HOSTILE = {'zip-GLOBAL': SYSTEM, 'zip-STACK_GLOBAL': SYSTEM, 'zip-INST': r'os\.system',
           'zip-REDUCE-import': r'builtins\.__import__',
           'zip-eval': r'(__builtin__|builtins)\.eval',
           'legacy-GLOBAL': SYSTEM, 'legacy-STACK_GLOBAL': SYSTEM, 'legacy-protocol': SYSTEM,
           'legacy-sys_info': SYSTEM, 'legacy-sys_info-INST': r'os\.system',
           'tar-pickle': SYSTEM, 'tar-STACK_GLOBAL': SYSTEM, 'tar-sys_info': SYSTEM}


def _hostile(case, path, cmd):
  inst = f"(S'{cmd}'\nios\nsystem\n.".encode()  # protocol 0's INST
  getattr_import = (f"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR"
                    f"(S'{cmd}'\ntR.").encode()  # getattr(__import__('os'), 'system')(cmd)
  obj, legacy = {'w': torch.ones(2), 'x': _Run(cmd)}, dict(_use_new_zipfile_serialization=False)
  {'zip-GLOBAL': lambda: torch.save(obj, path),
   'zip-STACK_GLOBAL': lambda: torch.save(obj, path, pickle_protocol=4),
   'zip-INST': lambda: _zip(path, inst), 'zip-REDUCE-import': lambda: _zip(path, getattr_import),
   'zip-eval': lambda: torch.save(_Run(f"__import__('os').system('{cmd}')", eval), path),
   'legacy-GLOBAL': lambda: torch.save(obj, path, **legacy),
   'legacy-STACK_GLOBAL': lambda: torch.save(obj, path, pickle_protocol=4, **legacy),
   'legacy-protocol': lambda: path.write_bytes(_header(_Run(cmd))),
   'legacy-sys_info': lambda: path.write_bytes(_header(1001, _Run(cmd), {}, [])),
   'legacy-sys_info-INST': lambda: path.write_bytes(_header(1001, inst, {}, [])),
   'tar-pickle': lambda: _save_tar(obj, path),
   'tar-STACK_GLOBAL': lambda: _save_tar(obj, path, protocol=4),
   'tar-sys_info': lambda: _save_tar({'w': torch.ones(2)}, path, sys_info=_Run(cmd))}[case]()


def _refused(path, *patterns):
  with pytest.raises(pth.PthError) as e:
    pth.load(path)
  assert str(e.value).startswith(str(path)), e.value
  for pattern in patterns:
    assert re.search(pattern, str(e.value)), e.value


@pytest.mark.parametrize('case', HOSTILE)
def test_hostile_file_is_refused_with_no_side_effect(case, tmp_path):
  marker, path = tmp_path / 'MARKER', tmp_path / f'{case}.pth'
  _hostile(case, path, f'touch {marker}')
  _refused(path, f'refused global {HOSTILE[case]}')
  assert not marker.exists()


@pytest.mark.parametrize('data_pkl,pattern', [
    (b"cbuiltins\ngetattr\n(cnumpy\nndarray\nS'tofile'\ntR.", 'getattr of'),
    (b"ctorch\nFloatStorage\n(dS'x'\nI1\nsb.", 'BUILD'),
    (b"ccollections\nOrderedDict\n)R(dS'x'\nI1\nsb.", 'OrderedDict attributes'),
    (b"cnumpy\ndtype\n(S'O8'\nI0\nI1\ntR.", 'numpy dtype')],
    ids=['REDUCE-getattr-ndarray', 'BUILD-storage-class', 'BUILD-OrderedDict', 'object-dtype'])
def test_pickle_that_is_not_data_is_refused(data_pkl, pattern, tmp_path):
  _zip(tmp_path / 'f.pth', data_pkl)
  _refused(tmp_path / 'f.pth', 'refused', pattern)


@pytest.mark.parametrize('pid', [('storage', 'x'), ('storage', 'x', '0', 'cpu', 10),
                                 ('storage', torch.FloatStorage, '0', 'cpu', -1), 'storage'],
                         ids=['short', 'type', 'numel', 'str'])
def test_bad_persistent_id(pid, tmp_path):
  _zip(tmp_path / 'f.pth', _data_pkl(0, (10,), (1,), pid), {'0': bytes(40)})
  _refused(tmp_path / 'f.pth', 'refused')


@pytest.mark.parametrize('offset,size,stride,inside', [
    (0, (2, 5), (5, 1), True), (0, (3, 4), (4, 1), False), (9, (), (), True),
    (10, (), (), False), (0, (4,), (3,), True), (0, (5,), (3,), False),
    (6, (2, 2), (2, 1), True), (7, (2, 2), (2, 1), False), (8, (2, 3), (1, 0), True),
    (8, (3, 3), (1, 0), False)])
def test_tensor_within_its_storage(offset, size, stride, inside, tmp_path):
  """A storage of 10 float32s: views that end on its last element load as torch loads them,
  views past it are refused, by torch and by pth alike."""
  path = tmp_path / 'f.pth'
  _zip(path, _data_pkl(offset, size, stride),
       {'0': np.arange(10, dtype=np.float32).tobytes()})
  if inside:
    _assert_same(pth.load(path), torch.load(path, weights_only=False))
  else:
    with pytest.raises(RuntimeError):
      torch.load(path, weights_only=False)
    _refused(path, 'reaches past storage')


def test_truncated_or_missing_zip_record(tmp_path):
  torch.save({'w': _tensor(torch.float32)}, tmp_path / 'good.pth')
  _rezip(tmp_path / 'good.pth', tmp_path / 'cut.pth',
         lambda name, data: data[:-4] if name == 'data/0' else data)
  _refused(tmp_path / 'cut.pth', 'has 56 bytes')
  _rezip(tmp_path / 'good.pth', tmp_path / 'drop.pth',
         lambda name, data: None if name == 'data/0' else data)
  _refused(tmp_path / 'drop.pth', 'has no record')


def test_damaged_legacy_file(tmp_path):
  good = tmp_path / 'good.pth'
  torch.save({'w': _tensor(torch.float32)}, good, _use_new_zipfile_serialization=False)
  data = good.read_bytes()
  at = len(data) - 15 * 4 - 8  # the element count before the one storage's 15 float32s
  assert struct.unpack_from('<q', data, at) == (15,)
  (tmp_path / 'cut.pth').write_bytes(data[:-4])
  _refused(tmp_path / 'cut.pth', 'truncated')
  (tmp_path / 'count.pth').write_bytes(data[:at] + struct.pack('<q', 16) + data[at + 8:])
  _refused(tmp_path / 'count.pth', 'holds 16 elements')


@pytest.mark.parametrize('data', [
    b'not a checkpoint', b'', pickle.dumps({'a': 1}, protocol=2), _header(1000, {}, {}, []),
    b'PK\x05\x06' + bytes(18), bytes(10240), None],
    ids=['text', 'empty', 'pickle', 'legacy-version', 'empty-zip', 'empty-tar', 'missing'])
def test_not_a_checkpoint(data, tmp_path):
  if data is not None:
    (tmp_path / 'f.pth').write_bytes(data)
  _refused(tmp_path / 'f.pth')


def test_file_object_errors_name_the_file(tmp_path):
  assert issubclass(pth.PthError, ValueError)
  with pytest.raises(pth.PthError, match='^<file object>'):
    pth.load(io.BytesIO(b'not a checkpoint'))
  (tmp_path / 'f.pth').write_bytes(b'')
  with open(tmp_path / 'f.pth', 'rb') as f, pytest.raises(pth.PthError) as e:
    pth.load(f)
  assert str(e.value).startswith(f.name)


def test_container_tells_the_kinds_apart(tmp_path):
  obj = {'w': torch.ones(2)}
  torch.save(obj, tmp_path / 'zip')
  torch.save(obj, tmp_path / 'legacy', _use_new_zipfile_serialization=False)
  torch.save(obj, tmp_path / 'legacy4', _use_new_zipfile_serialization=False, pickle_protocol=4)
  _save_tar(obj, tmp_path / 'tar')
  for name in ('zip', 'legacy', 'legacy4', 'tar'):
    assert pth.container((tmp_path / name).read_bytes()[:512]) == name.rstrip('4')
  for head in (b'not a checkpoint', b'', pickle.dumps(1, protocol=2)):
    with pytest.raises(ValueError):
      pth.container(head)


@pytest.mark.parametrize('case', sorted(set(HOSTILE) - {'tar-sys_info'}))
def test_hostile_payloads_are_live(case, tmp_path):
  """The files refused above run their command under torch.load(weights_only=False) (which
  skips a tar's sys_info): the refusals are of live payloads."""
  marker, path = tmp_path / 'MARKER', tmp_path / f'{case}.pth'
  _hostile(case, path, f'touch {marker}')
  try:
    torch.load(path, weights_only=False)
  except Exception:  # pylint: disable=broad-except
    pass  # the legacy header's checks after the payload ran
  assert marker.exists()
