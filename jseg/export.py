"""Models out of jseg: a config's inference as one artifact that runs without jseg, uint8
images in, logits / probabilities / labels out, normalization inside.

    python -m jseg.export --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --checkpoint=zoo --out=/tmp/pspnet_export [--format=onnx] [--output=labels]

writes the artifact and ``meta.json`` (normalization, channel order, classes and palette, sizes,
the config, versions, the artifact's sha256). Formats:

- ``stablehlo``: ``model.stablehlo``, ``jax.export``'s serialization, for CPU and CUDA;
- ``onnx``: ``model.onnx``, opset 17 (:mod:`jseg.onnx_lowering`), for ONNX Runtime, TensorRT,
  OpenVINO; NCHW convolutions with no Transpose between them.
 The input is (N, H, W, 3) uint8 at the network's input size (MMSeg's test ``Resize`` is
the caller's, as with MMDeploy; ``meta.json`` has its scale), the output is at that size:

- ``whole`` configs: any batch, height and width (symbolic shapes; PSANet's in multiples of 16,
  the parity of its feature map being part of its graph);
- ``slide`` configs: any batch of images of one size (``--image_size``), all windows in one
  batch, as :func:`jseg.inference.slide_logits`.

The graph is jseg's inference with XLA's own convolutions (:func:`jseg.models.cpu_conv.portable`:
the CPU rewrites stay in jseg): on one platform the StableHLO artifact's outputs equal that
forward bit for bit; the ONNX model's equal it within float32 rounding (another runtime's sums).
"""
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jseg import inference
from jseg.data import datasets
from jseg.models import build_segmentor, cpu_conv

OUTPUTS = ('logits', 'probs', 'labels')
CHANNEL_ORDERS = ('bgr', 'rgb')
PLATFORMS = ('cpu', 'cuda')
ARTIFACTS = {'stablehlo': 'model.stablehlo', 'onnx': 'model.onnx'}
META = 'meta.json'
# PSAHead's resize depends on whether its feature map (output stride 8) divides by its shrink
# factor 2, so its graph fixes that: inputs in multiples of 16.
PSA_SIZE_MULTIPLE = 16


def size_multiple(config) -> int:
  """What a symbolic height and width must be multiples of for ``config``'s network."""
  heads = config.model.decode_head
  heads = heads if isinstance(heads, (list, tuple)) else [heads]
  return PSA_SIZE_MULTIPLE if any(h['type'] == 'PSAHead' for h in heads) else 1


def serving_fn(config, variables, output: str = 'logits',
               channel_order: str = 'bgr') -> Callable[[jax.Array], jax.Array]:
  """``f(images)``: (N, H, W, 3) uint8 -> ``output`` of ``config``'s test mode at (H, W):
  logits (N, H, W, C) float32, softmax ``probs`` (float32) or ``labels`` (N, H, W) int32.
  Normalization is MMSeg's data preprocessor's (``jseg.data.transforms.Normalize``)."""
  if output not in OUTPUTS:
    raise ValueError(f'output={output!r}; valid: {", ".join(OUTPUTS)}')
  if channel_order not in CHANNEL_ORDERS:
    raise ValueError(f'channel_order={channel_order!r}; valid: {", ".join(CHANNEL_ORDERS)}')
  network = inference.network_logits(build_segmentor(config), config.test)
  mean = np.asarray(config.data.mean, np.float32)
  std = np.asarray(config.data.std, np.float32)

  def serve(images):
    x = jnp.flip(images, -1) if channel_order == 'bgr' else images  # the network takes RGB
    logits = network(variables, (x.astype(jnp.float32) - mean) / std)
    if output == 'logits':
      return logits
    if output == 'probs':
      return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)

  return serve


def input_spec(config, image_size: Optional[Tuple[int, int]] = None) -> jax.ShapeDtypeStruct:
  """The uint8 input's shape: symbolic batch, and symbolic height and width for a whole
  config (``image_size`` fixes them; a slide config needs it)."""
  if image_size is not None:
    shape = f'b, {int(image_size[0])}, {int(image_size[1])}'
  elif config.test.mode == 'slide':
    raise ValueError(f'{config.name} infers by sliding windows (test.mode=slide): its export '
                     'is for one image size; give image_size (--image_size=HxW)')
  else:
    k = size_multiple(config)
    shape = 'b, h, w' if k == 1 else f'b, {k}*h, {k}*w'
  return jax.ShapeDtypeStruct((*jax.export.symbolic_shape(shape), 3), jnp.uint8)


def export(config, variables, output: str = 'logits', channel_order: str = 'bgr',
           image_size: Optional[Tuple[int, int]] = None,
           platforms: Sequence[str] = PLATFORMS) -> jax.export.Exported:
  """``jax.export`` of :func:`serving_fn`, the variables inside, for ``platforms``."""
  serve = serving_fn(config, variables, output, channel_order)
  with cpu_conv.portable():
    return jax.export.export(jax.jit(serve), platforms=tuple(platforms))(
        input_spec(config, image_size))


def export_onnx(config, variables, output: str = 'logits', channel_order: str = 'bgr',
                image_size: Optional[Tuple[int, int]] = None):
  """The ONNX model (``onnx.ModelProto``) of :func:`serving_fn`, the variables inside:
  input ``images``, output named after ``output``, the sizes of :func:`input_spec` dynamic."""
  from jseg import onnx_lowering  # needs the onnx package: pip install 'jseg[export]'
  serve = serving_fn(config, variables, output, channel_order)
  try:
    with cpu_conv.portable():
      return onnx_lowering.to_onnx(serve, input_spec(config, image_size), output_name=output,
                                   doc=f'jseg {config.name}')
  except NotImplementedError as e:
    raise ValueError(f'{config.name}: the ONNX export cannot express this network: {e}') from e


def metadata(config, format: str, in_shape, out_shape, out_dtype: str, output: str,
             channel_order: str, image_size: Optional[Tuple[int, int]],
             artifact_sha256: str, **artifact) -> dict:
  """What ``meta.json`` says about an export: enough to prepare its input and read its output
  (``artifact``: what the format adds, e.g. StableHLO's platforms, ONNX's opset and names)."""
  try:
    info = datasets.dataset_info(config.data.dataset)
    classes, palette = list(info.classes), np.asarray(info.palette).tolist()
  except FileNotFoundError:  # a folder data set not prepared here
    classes, palette = None, None
  return {
      'config': config.name, 'format': format, 'artifact': ARTIFACTS[format],
      'artifact_sha256': artifact_sha256, **artifact,
      'input': {'dtype': 'uint8', 'layout': 'NHWC', 'channel_order': channel_order,
                'shape': [str(d) for d in in_shape],
                'size_multiple': size_multiple(config) if image_size is None else None},
      'output': {'kind': output, 'shape': [str(d) for d in out_shape], 'dtype': out_dtype},
      'normalization': {'mean': list(config.data.mean), 'std': list(config.data.std),
                        'to_rgb': channel_order == 'bgr'},
      'test': {'mode': config.test.mode, 'crop_size': list(config.test.get('crop_size') or []),
               'stride': list(config.test.get('stride') or []),
               'resize_scale': list(config.data.test_img_scale), 'keep_ratio': True},
      'classes': classes, 'palette': palette, 'num_classes': config.data.num_classes,
      'versions': {'jseg': _version('jseg'), 'jax': jax.__version__},
  }


def _version(package: str) -> Optional[str]:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:  # run from a checkout without pip install
    return None


def save(config, variables, out_dir: str, output: str = 'logits', channel_order: str = 'bgr',
         image_size: Optional[Tuple[int, int]] = None,
         platforms: Sequence[str] = PLATFORMS, format: str = 'stablehlo') -> str:
  """Writes the export's artifact (``format``: stablehlo or onnx) and ``meta.json`` into the
  new directory ``out_dir`` (whole or not at all); returns it."""
  if format not in ARTIFACTS:
    raise ValueError(f'format={format!r}; valid: {", ".join(ARTIFACTS)}')
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir):
    raise FileExistsError(f'{out_dir} exists: give a new directory')
  if format == 'stablehlo':
    exported = export(config, variables, output, channel_order, image_size, platforms)
    data, (out,) = exported.serialize(), exported.out_avals
    out_shape, out_dtype = out.shape, str(out.dtype)
    artifact = {'platforms': list(exported.platforms)}
  else:
    import onnx  # pylint: disable=import-outside-toplevel  (the [export] extra)
    from jseg import onnx_lowering  # pylint: disable=import-outside-toplevel
    model = export_onnx(config, variables, output, channel_order, image_size)
    data, (out,) = model.SerializeToString(), model.graph.output
    out_shape = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    out_dtype = str(onnx.helper.tensor_dtype_to_np_dtype(out.type.tensor_type.elem_type))
    artifact = {'opset': onnx_lowering.OPSET, 'input_name': model.graph.input[0].name,
                'output_name': out.name}
  meta = metadata(config, format, input_spec(config, image_size).shape, out_shape, out_dtype,
                  output, channel_order, image_size, hashlib.sha256(data).hexdigest(), **artifact)
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(out_dir)}-')
  try:
    with open(os.path.join(tmp, ARTIFACTS[format]), 'wb') as f:
      f.write(data)
    with open(os.path.join(tmp, META), 'w') as f:
      json.dump(meta, f, indent=2)
    os.rename(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return out_dir


def load(directory: str) -> Callable[[np.ndarray], np.ndarray]:
  """The exported function of a :func:`save` directory, after checking the artifact against
  ``meta.json``'s sha256: StableHLO through jax, ONNX through onnxruntime (jseg not needed
  either way). An input of a size the export cannot take raises ValueError naming the size
  and what the export takes."""
  with open(os.path.join(directory, META)) as f:
    meta = json.load(f)
  with open(os.path.join(directory, meta['artifact']), 'rb') as f:
    data = f.read()
  if hashlib.sha256(data).hexdigest() != meta['artifact_sha256']:
    raise ValueError(f'{directory}/{meta["artifact"]} does not match the sha256 in its '
                     f'{META}: the file is damaged or was replaced')
  if meta['format'] == 'onnx':
    import onnxruntime  # pip install 'jseg[export]'
    session = onnxruntime.InferenceSession(data, providers=['CPUExecutionProvider'])
    run = lambda images: session.run(None, {meta['input_name']: np.asarray(images)})[0]
  else:
    run = jax.export.deserialize(data).call
  want = meta['input']['shape']
  fixed = [int(d) for d in want[1:3] if d.isdigit()]
  k = meta['input']['size_multiple'] or 1

  def call(images):
    shape, dtype = np.shape(images), getattr(images, 'dtype', None)
    h, w = shape[1:3] if len(shape) == 4 else (None, None)
    if (len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8
        or (len(fixed) == 2 and (h, w) != tuple(fixed)) or h % k or w % k):
      raise ValueError(f'{meta["config"]} export takes uint8 (N, H, W, 3) images of shape '
                       f'{want}{f" (H and W multiples of {k})" if k > 1 else ""}, got '
                       f'{dtype} {tuple(shape)}')
    return run(images)

  return call


def main(argv):
  del argv
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  from jseg import config as jconfig, weights
  config = jconfig.resolve_num_classes(jconfig.load(FLAGS.config))
  variables = weights.load_variables(config, FLAGS.checkpoint)
  size = tuple(int(s) for s in FLAGS.image_size.split('x')) if FLAGS.image_size else None
  out = save(config, variables, FLAGS.out, FLAGS.output, FLAGS.channel_order, size,
             format=FLAGS.format)
  print(f'wrote {out} ({config.name}, {FLAGS.format}: {FLAGS.output}, {FLAGS.channel_order} '
        'uint8 in)')


if __name__ == '__main__':
  from absl import app, flags
  flags.DEFINE_string('config', None, 'config spec PATH[:VARIANT]', required=True)
  flags.DEFINE_string('checkpoint', None, 'weights: orbax directory, training workdir, MMSeg .pth '
                      'or zoo / zoo:NAME', required=True)
  flags.DEFINE_string('out', None, 'new directory for the artifact and meta.json', required=True)
  flags.DEFINE_enum('format', 'stablehlo', list(ARTIFACTS), 'stablehlo (jax.export) or onnx')
  flags.DEFINE_enum('output', 'logits', list(OUTPUTS), 'what the export returns')
  flags.DEFINE_enum('channel_order', 'bgr', list(CHANNEL_ORDERS),
                    "the input's channel order (bgr: as cv2.imread reads, MMSeg's)")
  flags.DEFINE_string('image_size', None, 'HxW: one input size (needed for slide configs)')
  FLAGS = flags.FLAGS
  app.run(main)
