"""jseg.export: every method's StableHLO and ONNX exports, one artifact for every input size
(symbolic batch, height and width): StableHLO equal bit for bit to jseg's inference on the same
platform, ONNX (in ONNX Runtime) within float32 rounding, with no Transpose around the
convolutions; slide exports; the saved artifacts, meta.json and their checks; the command."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest

import fast_compile
import parity
from jseg import checkpoints, export
from jseg import config as jconfig
from jseg.models import build_segmentor, cpu_conv, init_variables

ROOT = os.path.join(os.path.dirname(__file__), '..')
# Each method's smallest backbone (quarter-width ResNet-18 where jseg has one), at the synthetic
# data set's 6 classes: the export does not depend on the data set. The heads that jseg has on
# ResNet-50 only run here on a ResNet-18, and HRNet has one module per stage (the parity tests'
# reductions: every kind of layer, a fraction of the compile time).
SMALLEST = {
    'fcn': 'r18w16-d8', 'pspnet': 'r18w16-d8', 'psanet': 'r50-d8', 'deeplabv3': 'r18-d8',
    'deeplabv3plus': 'r18-d8', 'upernet': 'r18', 'hrnet': 'hr18s', 'gcnet': 'r50-d8',
    'nonlocal_net': 'r50-d8', 'ccnet': 'r50-d8', 'danet': 'r50-d8', 'ann': 'r50-d8',
    'ocrnet': 'hr18s'}
NO_ATTENTION = ('fcn', 'pspnet', 'deeplabv3', 'deeplabv3plus', 'upernet', 'hrnet')
SIZES = ((97, 129), (65, 161))  # odd sizes: D8 feature maps of 13 x 17 and 9 x 21
PSA_SIZES = ((96, 128), (64, 160))  # PSANet's export takes multiples of 16


def _model(method, variant=None):
  config = jconfig.load(f'configs/{method}.py:{variant or SMALLEST[method]}_64x64_2k_synthetic')
  if config.model.backbone.get('depth') == 50:
    parity.on_resnet18(config.model)
  elif config.model.backbone.type == 'HRNet':
    parity.one_module_hrnet(config.model)
  return config, parity.nonzero_params(
      init_variables(build_segmentor(config), jax.random.key(0)))


def _images(size, batch=1, seed=0):
  return jax.random.randint(jax.random.key(seed), (batch, *size, 3), 0, 256).astype(jnp.uint8)


def _jseg(config, variables, images, output='logits'):
  """jseg's inference of uint8 ``images`` with XLA's own convolutions (what GPUs run)."""
  with cpu_conv.portable():
    return np.asarray(fast_compile.jit(export.serving_fn(config, variables, output))(images))


def _onnx_session(model):
  return onnxruntime.InferenceSession(model.SerializeToString(),
                                      providers=['CPUExecutionProvider'])


def _map_transposes(model) -> int:
  return sum(n.op_type == 'Transpose' and len(n.attribute[0].ints) >= 3
             for n in model.graph.node)


def _assert_onnx_close(got, want, err_msg=''):
  """float32 rounding: another runtime's sums (measured worst 2.4e-6 of the largest logit)."""
  assert got.shape == want.shape and got.dtype == want.dtype, err_msg
  err = np.abs(got - want).max() / np.abs(want).max()
  assert err < 1e-5, f'{err_msg}: relative error {err:.2e}'
  assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9999, err_msg


@pytest.mark.parametrize('method', sorted(SMALLEST))
def test_one_export_takes_every_size_and_equals_jseg(method):
  config, variables = _model(method)
  exported = export.export(config, variables)
  assert exported.platforms == ('cpu', 'cuda')
  call = fast_compile.jit(jax.export.deserialize(exported.serialize()).call)  # round trip
  model = export.export_onnx(config, variables)
  # Transposes of feature maps (rank >= 3; a resize's small weight matrix may be transposed):
  # the input's NHWC -> NCHW and the output's way back; some attention heads add theirs.
  transposes = _map_transposes(model)
  assert transposes <= (2 if method in NO_ATTENTION else 10), transposes
  session = _onnx_session(model)
  for i, size in enumerate(PSA_SIZES if method == 'psanet' else SIZES):
    images = _images(size, batch=2 - i, seed=i)
    got = np.asarray(call(images))
    assert got.shape == (2 - i, *size, 6) and got.dtype == np.float32
    want = _jseg(config, variables, images)
    np.testing.assert_array_equal(got, want, err_msg=str(size))
    _assert_onnx_close(session.run(None, {'images': np.asarray(images)})[0], want, str(size))


def test_outputs_meta_and_checks_of_a_saved_export(tmp_path):
  config, variables = _model('pspnet')
  images = _images((97, 129), batch=2)
  logits = _jseg(config, variables, images)
  for output in export.OUTPUTS:
    directory = export.save(config, variables, tmp_path / output, output=output)
    got = np.asarray(fast_compile.jit(export.load(directory))(images))
    np.testing.assert_array_equal(got, _jseg(config, variables, images, output))
  np.testing.assert_array_equal(got, logits.argmax(-1))
  meta = json.loads((tmp_path / 'labels' / 'meta.json').read_text())
  assert meta['input'] == {'dtype': 'uint8', 'layout': 'NHWC', 'channel_order': 'bgr',
                           'shape': ['b', 'h', 'w', '3'], 'size_multiple': 1}
  assert meta['output'] == {'kind': 'labels', 'shape': ['b', 'h', 'w'], 'dtype': 'int32'}
  assert meta['normalization'] == {'mean': [123.675, 116.28, 103.53],
                                   'std': [58.395, 57.12, 57.375], 'to_rgb': True}
  assert meta['classes'][0] == 'background' and len(meta['palette']) == meta['num_classes'] == 6
  assert meta['config'] == config.name and meta['versions']['jax'] == jax.__version__
  # RGB input: the same network, the channels taken as given.
  rgb = export.save(config, variables, tmp_path / 'rgb', channel_order='rgb')
  np.testing.assert_array_equal(
      np.asarray(fast_compile.jit(export.load(rgb))(images[..., ::-1])), logits)
  # What it refuses, by name.
  with pytest.raises(ValueError, match=r"takes uint8 \(N, H, W, 3\) images .* got float32"):
    export.load(rgb)(np.zeros((1, 97, 129, 3), np.float32))
  with pytest.raises(FileExistsError, match='exists: give a new directory'):
    export.save(config, variables, rgb)
  artifact = tmp_path / 'rgb' / 'model.stablehlo'
  data = bytearray(artifact.read_bytes())
  data[len(data) // 2] ^= 1
  artifact.write_bytes(bytes(data))
  with pytest.raises(ValueError, match='does not match the sha256 in its meta.json'):
    export.load(rgb)
  with pytest.raises(ValueError, match="output='mask'; valid: logits, probs, labels"):
    export.serving_fn(config, variables, output='mask')
  with pytest.raises(ValueError, match="format='tflite'; valid: stablehlo, onnx"):
    export.save(config, variables, tmp_path / 'tflite', format='tflite')
  # ONNX: the same checks through onnxruntime.
  directory = export.save(config, variables, tmp_path / 'onnx', output='labels', format='onnx')
  meta = json.loads((tmp_path / 'onnx' / 'meta.json').read_text())
  assert (meta['format'], meta['artifact'], meta['opset']) == ('onnx', 'model.onnx', 17)
  assert (meta['input_name'], meta['output_name']) == ('images', 'labels')
  assert meta['output'] == {'kind': 'labels', 'shape': ['b', 'h', 'w'], 'dtype': 'int32'}
  labels = export.load(directory)(np.asarray(images))
  assert labels.dtype == np.int32 and (labels == logits.argmax(-1)).mean() >= 0.9999
  with pytest.raises(ValueError, match=r"takes uint8 \(N, H, W, 3\) images .* got uint8 "
                                       r"\(2, 97, 129, 2\)"):
    export.load(directory)(np.zeros((2, 97, 129, 2), np.uint8))


def test_psanet_sizes_are_multiples_of_16(tmp_path):
  config, variables = _model('psanet')
  directory = export.save(config, variables, tmp_path / 'psa', output='labels')
  with pytest.raises(ValueError, match=r'shape \[.b., .16\*h., .16\*w., .3.\] \(H and W '
                                       r'multiples of 16\), got uint8 \(1, 97, 128, 3\)'):
    export.load(directory)(np.zeros((1, 97, 128, 3), np.uint8))
  with pytest.raises(ValueError, match='PSAHead: whether the .* feature map divides by 2'):
    with cpu_conv.portable():
      jax.export.export(jax.jit(export.serving_fn(config, variables)))(jax.ShapeDtypeStruct(
          (*jax.export.symbolic_shape('b, h, w'), 3), jnp.uint8))


def test_slide_export_equals_jseg_slide_on_a_full_frame():
  """A 769x769-crop slide config (Cityscapes' 769 recipe: stride 513) on a 1024x2048 frame:
  8 windows in one batch, pasted and averaged in the graph, as jseg's slide inference."""
  config, variables = _model('fcn')
  config.test.mode, config.test.crop_size, config.test.stride = 'slide', (769, 769), (513, 513)
  with pytest.raises(ValueError, match='test.mode=slide.*give image_size'):
    export.export(config, variables)
  exported = export.export(config, variables, image_size=(1024, 2048))
  assert [str(d) for d in exported.in_avals[0].shape] == ['b', '1024', '2048', '3']
  images = _images((1024, 2048))
  got = np.asarray(fast_compile.jit(exported.call)(images))
  want = _jseg(config, variables, images)
  np.testing.assert_array_equal(got, want)
  model = export.export_onnx(config, variables, image_size=(1024, 2048))
  assert [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim
          ] == ['b', 1024, 2048, 3]
  _assert_onnx_close(_onnx_session(model).run(None, {'images': np.asarray(images)})[0], want)


def test_export_command_writes_what_load_runs(tmp_path):
  config, variables = _model('fcn')
  checkpoints.save_variables(tmp_path / 'ckpt', variables)
  out = tmp_path / 'exported'
  subprocess.run([sys.executable, '-m', 'jseg.export', f'--config=configs/fcn.py:'
                  f'{SMALLEST["fcn"]}_64x64_2k_synthetic', f'--checkpoint={tmp_path / "ckpt"}',
                  f'--out={out}', '--output=labels', '--format=onnx'], check=True, cwd=ROOT,
                 capture_output=True, env=fast_compile.env())
  images = _images((65, 161))
  got = export.load(out)(np.asarray(images))
  assert (got == _jseg(config, variables, images, 'labels')).mean() >= 0.9999
