"""Inference speed, memory and FLOPs, and training throughput of one config.

Inference follows MMSeg's ``tools/analysis_tools/benchmark.py``: batch 1, ``num_images``
images (200), the first 5 not timed; each image is timed from its normalized input on the
device to its label map at the original image size: network forward, resize of the logits
to the original size, argmax (MMSeg's ``model(..., mode='predict')``), with
``jax.block_until_ready`` per image. Data loading is not timed (MMSeg starts its clock after
the data preprocessor has put the batch on the GPU), so the inputs are random normalized
images of the config's test input size: the dataset's typical original size
(``ORIGINAL_SIZE``, 1024x2048 for Cityscapes) resized with keep-ratio into
``data.test_img_scale``, as the test pipeline does.

FLOPs are XLA's cost analysis of the compiled forward (``jit(...).lower(...).compile()
.cost_analysis()``); XLA counts a multiply-add as 2 FLOPs, where MMSeg's ``get_flops``
(fvcore / mmcv) counts it as 1. Peak device memory comes from ``device.memory_stats()``
where the backend keeps it (GPU, TPU; the CPU does not: 'n/a'); XLA's static estimate of the
compiled executable (arguments + outputs + temporaries) is given on every backend.

Training throughput: images per second of the jitted, sharded ``train_step`` of
:mod:`jseg.train` at the config's global batch and crop on random images and labels
(``train_batch`` scales the batch down for small machines).

On a spatial mesh (``mesh.spatial`` > 1, :mod:`jseg.mesh`) the train step runs on the config's
``('data', 'spatial')`` mesh over every device, and inference splits its one image's rows over
``mesh.spatial`` devices (mesh 1 x ``mesh.spatial``); memory is per device (XLA's analysis of the
partitioned executable; the peak: the largest of the mesh's devices), as are the FLOPs of the
compiled, partitioned programs (``gflops_per_img``, ``gflops_per_iter``); ``gflops`` stays the
whole network's forward.

    python -m jseg.main --mode=benchmark --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --benchmark_train --benchmark_json=/tmp/pspnet.json
"""
import json
import os
import time
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jseg import loss_scale
from jseg import mesh as jmesh
from jseg import train as jtrain
from jseg.inference import make_predict_fn, output_align_corners
from jseg.models import build_segmentor

# A typical original image (h, w) of each test data set: MMSeg's benchmark runs over the val
# set; Cityscapes' images are all 1024x2048, the others' vary (these are common sizes; the aerial
# sets: the tiles prepare writes). Mapillary's and a folder data set's sizes vary too much:
# pass ``original_size`` (--benchmark_size).
ORIGINAL_SIZE = {'cityscapes': (1024, 2048), 'ade20k': (512, 683), 'voc12aug': (375, 500),
                 'pascal_context': (375, 500), 'pascal_context_59': (375, 500),
                 'coco_stuff10k': (480, 640), 'coco_stuff164k': (480, 640),
                 'loveda': (1024, 1024), 'potsdam': (512, 512), 'vaihingen': (512, 512),
                 'isaid': (896, 896), 'dark_zurich': (1080, 1920), 'night_driving': (1080, 1920),
                 'synthetic': (64, 64)}
WARMUP = 5  # MMSeg's num_warmup


def parse_size(spec: str) -> Tuple[int, int]:
  """'HxW' -> (h, w)."""
  try:
    h, w = (int(v) for v in spec.lower().split('x'))
  except ValueError:
    raise ValueError(f'size {spec!r} is not HxW, e.g. 1024x2048') from None
  return h, w


def original_image_size(config, original_size: Optional[Sequence[int]] = None
                        ) -> Tuple[int, int]:
  """``original_size``, else the usual (h, w) of the test data set's images."""
  if original_size:
    return tuple(original_size)
  if config.data.test_dataset not in ORIGINAL_SIZE:
    raise ValueError(f'no usual image size for data set {config.data.test_dataset!r}: give '
                     'one, e.g. --benchmark_size=1080x1920')
  return ORIGINAL_SIZE[config.data.test_dataset]


def test_input_size(config, original_size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
  """(h, w) of the network input for an ``original_size`` image: keep-ratio resize into
  ``data.test_img_scale`` (mmcv's ``rescale_size``, as the test pipeline)."""
  from jseg.data.transforms import rescale_size
  h, w = original_image_size(config, original_size)
  (nw, nh), _ = rescale_size((w, h), tuple(config.data.test_img_scale))
  return nh, nw


def random_variables(model, config, seed: int = 0):
  """Random variables of ``model``'s shapes, O(1) activations (as tests/mmseg_ref.randomize):
  weights N(0, 1 / fan_in), BN scales and variances U[0.5, 1.5), the rest N(0, 0.2^2).

  Filled on the host: compiling ``model.init`` takes XLA:CPU longer than the benchmark.
  """
  image = jax.ShapeDtypeStruct((1, *config.data.crop_size, 3), jnp.float32)
  shapes = jax.eval_shape(model.init, jax.random.key(0), image)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = getattr(path[-1], 'key', str(path[-1]))
    shape = leaf.shape
    if len(shape) >= 2:  # conv HWIO / dense (in, out) kernel
      value = rng.standard_normal(shape) * np.sqrt(1.0 / np.prod(shape[:-1]))
    elif name in ('var', 'scale'):
      value = 0.5 + rng.random(shape)
    else:
      value = 0.2 * rng.standard_normal(shape)
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def cost(compiled) -> dict:
  """XLA's cost analysis of a compiled executable (a dict; older jax: a list of dicts)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return dict(analysis or {})


def flops(jitted, *args) -> float:
  """FLOPs (multiply-add = 2) of ``jitted(*args)`` from XLA's cost analysis of the compiled
  executable; the unoptimized HLO's analysis where the backend gives none."""
  value = cost(jitted.lower(*args).compile()).get('flops', 0.0)
  if value <= 0:
    analysis = jitted.lower(*args).cost_analysis()
    if isinstance(analysis, (list, tuple)):
      analysis = analysis[0] if analysis else {}
    value = (analysis or {}).get('flops', 0.0)
  return float(value)


def compiled_memory(compiled) -> Optional[int]:
  """XLA's estimate of an executable's device memory: arguments + outputs + temporaries."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if m is None:
    return None
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - m.alias_size_in_bytes)


def peak_memory(devices=None) -> Optional[int]:
  """Peak bytes in use since the process started, the largest over ``devices`` (default: the
  first local device); None where the backend keeps no statistics (CPU)."""
  peaks = []
  for device in devices or jax.local_devices()[:1]:
    try:
      stats = device.memory_stats()
    except Exception:  # pylint: disable=broad-except
      return None
    peak = (stats or {}).get('peak_bytes_in_use', (stats or {}).get('bytes_in_use'))
    if peak is None:
      return None
    peaks.append(int(peak))
  return max(peaks)


def device_description(device=None) -> str:
  device = device or jax.local_devices()[0]
  return f'{jax.device_count()} x {device.platform} ({device.device_kind})'


def time_calls(fn: Callable[[int], object], num: int, warmup: int = WARMUP,
               log: Optional[Callable[[int, float], None]] = None,
               log_interval: int = 50) -> np.ndarray:
  """Seconds of ``fn(i)`` for i in [0, num), each until its outputs are ready; the
  first ``warmup`` calls are run but not returned."""
  times = []
  for i in range(num):
    start = time.perf_counter()
    jax.block_until_ready(fn(i))
    elapsed = time.perf_counter() - start
    if i >= warmup:
      times.append(elapsed)
      if log and (i + 1) % log_interval == 0:
        log(i + 1, len(times) / sum(times))
  return np.asarray(times)


def inference_benchmark(config, variables=None, num_images: int = 200, warmup: int = WARMUP,
                        original_size: Optional[Sequence[int]] = None, seed: int = 0,
                        log: Optional[Callable[[str], None]] = print) -> dict:
  """MMSeg's benchmark protocol on random inputs; see the module docstring.

  Returns ``fps``, ``ms_per_img``, ``gflops`` (network forward at the input size),
  ``gflops_per_img`` (everything timed, per device), ``peak_memory_bytes`` (None where the
  backend keeps no statistics), ``compiled_memory_bytes`` and ``mesh``: the image's rows split
  over ``mesh.spatial`` devices (1 x ``mesh.spatial``).
  """
  if num_images <= warmup:
    raise ValueError(f'num_images={num_images} must exceed the {warmup} warm-up images')
  spatial = config.mesh.spatial
  if spatial > jax.local_device_count():
    raise ValueError(f'mesh.spatial={spatial}: inference splits one image over that many '
                     f'devices, this process has {jax.local_device_count()}')
  mesh = jmesh.make_mesh(jax.local_devices()[:spatial], spatial)
  on_mesh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  model = build_segmentor(config)
  if variables is None:
    variables = random_variables(model, config, seed)
  variables = jax.device_put(variables, on_mesh)
  out_size = original_image_size(config, original_size)
  in_size = test_input_size(config, out_size)
  predict = make_predict_fn(model, config.test, output_align_corners(config),
                            mesh if spatial > 1 else None)
  segment = jax.jit(lambda v, x: jnp.argmax(predict(v, x, out_size), axis=-1))
  forward = jax.jit(lambda v, x: model.apply(v, x))  # unconstrained: the whole network's FLOPs
  keys = jax.random.split(jax.random.key(seed + 1), 2)
  images = [jax.device_put(jax.random.normal(k, (1, *in_size, 3), jnp.float32), on_mesh)
            for k in keys]  # two inputs in turn, so no call sees the previous one's input
  start = time.perf_counter()
  compiled = segment.lower(variables, images[0]).compile()
  compile_s = time.perf_counter() - start
  times = time_calls(lambda i: compiled(variables, images[i % 2]), num_images, warmup,
                     log and (lambda i, fps: log(f'Done image [{i:<3}/ {num_images}], '
                                                 f'fps: {fps:.2f} img / s')))
  fps = len(times) / times.sum()
  return dict(input_size=list(in_size), output_size=list(out_size), num_images=num_images,
              warmup=warmup, fps=fps, ms_per_img=1e3 / fps, compile_s=compile_s,
              ms_per_img_median=1e3 * float(np.median(times)),
              gflops=flops(forward, variables, images[0]) / 1e9,
              gflops_per_img=cost(compiled).get('flops', 0.0) / 1e9,
              peak_memory_bytes=peak_memory(mesh.devices.flat),
              compiled_memory_bytes=compiled_memory(compiled), mesh=dict(mesh.shape))


def loader_batch_shapes(config, batch_size: int):
  """Shapes of one batch as the loader ships it (:func:`jseg.data.loader.train_batches`):
  uint8 BGR images, uint8 labels and int32 sizes at the config's crop."""
  h, w = config.data.crop_size
  return (jax.ShapeDtypeStruct((batch_size, h, w, 3), jnp.uint8),
          jax.ShapeDtypeStruct((batch_size, h, w), jnp.uint8),
          jax.ShapeDtypeStruct((batch_size, 2), jnp.int32))


def jitted_train_step(config, state, mesh):
  """:mod:`jseg.train`'s jitted train_step as training runs it (the loader's uint8 batch
  normalized on the device, state donated), ``state`` (arrays or shapes) replicated on
  ``mesh``; ``step(state, (images, sizes), labels, key)``."""
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  step = jtrain.make_train_step(build_segmentor(config), jtrain.make_optimizer(config.train),
                                config.model, config.data)
  return jtrain.jit_train_step(step, mesh, jax.tree_util.tree_map(lambda _: replicated, state),
                               loader_batch=True)


def compiled_train_step(config, variables, images, labels, mesh=None, seed: int = 0):
  """The train step (:func:`jitted_train_step`) compiled on ``mesh`` (default: every device)
  for this process's ``images`` (N, H, W, 3) uint8 BGR and ``labels`` (N, H, W) uint8, unpadded;
  the replicated state of ``variables``. Returns ``(compiled, state, args)``:
  ``compiled(state, *args)`` runs one step on that batch."""
  mesh = mesh or jmesh.make_mesh()
  tx = jtrain.make_optimizer(config.train)
  state = jax.jit(lambda v: jtrain.init_state(tx, v, loss_scale.from_config(config)))(variables)
  step_fn = jitted_train_step(config, state, mesh)
  state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  sizes = np.tile(np.asarray(images.shape[1:3], np.int32), (len(images), 1))
  images, labels, sizes = jtrain.global_batch(mesh, images, labels, sizes)
  args = ((images, sizes), labels, jax.random.key(seed + 2))
  return step_fn.lower(state, *args).compile(), state, args


def train_benchmark(config, batch_size: Optional[int] = None, steps: int = 20,
                    warmup: int = 3, seed: int = 0) -> dict:
  """Images per second of the jitted train_step at ``batch_size`` (default: the config's
  global batch) and the config's crop, on random uint8 images and labels, on the config's mesh
  over every device (:func:`jseg.mesh.make_mesh` with ``mesh.spatial``)."""
  batch_size = batch_size or config.train.batch_size
  mesh = jmesh.make_mesh(spatial=config.mesh.spatial)
  checked = config.copy_and_resolve_references()  # the caller's config stays as it is
  checked.train.batch_size = batch_size
  model = build_segmentor(config)
  jmesh.check_mesh(checked, mesh, model.backbone.output_stride)
  variables = random_variables(model, config, seed)
  local = batch_size // jax.process_count()
  rng = np.random.default_rng(seed + jax.process_index())
  h, w = config.data.crop_size
  images = rng.integers(0, 256, (local, h, w, 3), np.uint8)
  labels = rng.integers(0, config.data.num_classes, (local, h, w)).astype(np.uint8)
  labels[rng.random(labels.shape) < 0.05] = config.data.ignore_index
  start = time.perf_counter()
  compiled, state, args = compiled_train_step(config, variables, images, labels, mesh, seed)
  compile_s = time.perf_counter() - start
  holder = [state]

  def step(_):
    holder[0], scalars = compiled(holder[0], *args)
    return scalars

  times = time_calls(step, warmup + steps, warmup)
  per_iter = float(times.sum() / len(times))
  return dict(batch_size=batch_size, crop_size=[h, w], steps=steps, warmup=warmup,
              img_per_s=batch_size / per_iter, ms_per_iter=1e3 * per_iter, compile_s=compile_s,
              gflops_per_iter=cost(compiled).get('flops', 0.0) / 1e9,
              peak_memory_bytes=peak_memory(jax.local_devices()),
              compiled_memory_bytes=compiled_memory(compiled), mesh=dict(mesh.shape))


def train_step_memory(config, batch_size: Optional[int] = None, mesh=None) -> dict:
  """XLA's memory analysis (per device) of the jitted train step at ``batch_size`` (default:
  the config's) and the config's crop on ``mesh`` (default one device), compiled from shapes
  alone: no weights are made and nothing runs, so it sizes steps that would not fit."""
  batch_size = batch_size or config.train.batch_size
  mesh = mesh or jmesh.make_mesh(jax.local_devices()[:1])
  model = build_segmentor(config)
  tx = jtrain.make_optimizer(config.train)
  h, w = config.data.crop_size
  variables = jax.eval_shape(model.init, jax.random.key(0),
                             jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32))
  state = jax.eval_shape(lambda v: jtrain.init_state(tx, v, loss_scale.from_config(config)),
                         variables)
  images, labels, sizes = loader_batch_shapes(config, batch_size)
  start = time.perf_counter()
  compiled = jitted_train_step(config, state, mesh).lower(
      state, (images, sizes), labels, jax.random.key(0)).compile()
  m = compiled.memory_analysis()
  return dict(batch_size=batch_size, crop_size=[h, w], mesh=dict(mesh.shape),
              precision=config.get('precision', 'float32'),
              remat=config.train.get('remat', 'none'), compile_s=time.perf_counter() - start,
              argument_bytes=int(m.argument_size_in_bytes), temp_bytes=int(m.temp_size_in_bytes),
              compiled_memory_bytes=compiled_memory(compiled))


def _mib(n: Optional[int]) -> str:
  return 'n/a' if n is None else f'{n / 2**20:.1f} MiB'


def run(config, variables=None, *, num_images: int = 200, original_size=None,
        train: bool = False, train_batch: Optional[int] = None, train_steps: int = 20,
        json_path: Optional[str] = None, print_fn: Callable[[str], None] = print) -> dict:
  """Inference benchmark (and training throughput with ``train``), printed and returned;
  written as JSON to ``json_path`` if given. Only process 0 prints and writes."""
  main = jax.process_index() == 0
  out = print_fn if main else (lambda _: None)
  result = dict(config=config.name, device=device_description(), backend=jax.default_backend(),
                jax_version=jax.__version__, unit='img / s',
                date=time.strftime('%Y-%m-%d %H:%M:%S'),
                precision=config.get('precision', 'float32'), remat=config.train.get('remat', 'none'))
  out(f'{config.name} on {result["device"]}, jax {jax.__version__}, precision '
      f'{result["precision"]}, remat {result["remat"]}')
  inf = inference_benchmark(config, variables, num_images, original_size=original_size, log=out)
  result['inference'] = inf
  (ih, iw), (oh, ow) = inf['input_size'], inf['output_size']
  mesh = lambda r: '' if r['mesh']['spatial'] == 1 else (
      f' on mesh {r["mesh"]["data"]} x {r["mesh"]["spatial"]} (data x spatial; FLOPs and '
      'memory per device)')
  out(f'inference: batch 1{mesh(inf)}, input {ih}x{iw}, output {oh}x{ow}, {num_images} images '
      f'({inf["warmup"]} warm-up): {inf["fps"]:.2f} img / s, {inf["ms_per_img"]:.1f} ms / img '
      f'(median {inf["ms_per_img_median"]:.1f})')
  out(f'  FLOPs (XLA, multiply-add = 2): forward {inf["gflops"]:.2f} GFLOPs, '
      f'with resize + argmax {inf["gflops_per_img"]:.2f} GFLOPs; achieved '
      f'{inf["gflops_per_img"] * inf["fps"]:.1f} GFLOP/s')
  out(f'  memory: peak device {_mib(inf["peak_memory_bytes"])}, '
      f'XLA estimate {_mib(inf["compiled_memory_bytes"])}')
  if train:
    tr = train_benchmark(config, train_batch, train_steps)
    result['train'] = tr
    out(f'training: batch {tr["batch_size"]}{mesh(tr)}, crop '
        f'{tr["crop_size"][0]}x{tr["crop_size"][1]}, '
        f'{tr["steps"]} steps: {tr["img_per_s"]:.2f} img / s, {tr["ms_per_iter"]:.1f} ms / iter, '
        f'{tr["gflops_per_iter"]:.1f} GFLOPs / iter')
    out(f'  memory: peak device {_mib(tr["peak_memory_bytes"])} (since the start), '
        f'XLA estimate {_mib(tr["compiled_memory_bytes"])}')
  if json_path and main:
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, 'w') as f:
      json.dump(result, f, indent=2)
    out(f'wrote {json_path}')
  return result
