"""Train steps of one method on 8 host devices, on several ('data', 'spatial') meshes, from the
same state and batch; saves each mesh's losses, gradients' effect (the updated parameters and
BatchNorm statistics), eval-mode logits, and the evaluator's prediction at a size that does not
divide (61 x 37 resized to 67 x 45).

    python tests/spatial_step.py OUT.npz METHOD [float64|float32] [MESHES...]

MESHES are DATAxSPATIAL (default 8x1 2x4 1x8). Run in a subprocess: the device count is fixed
when JAX starts (the caller sets --xla_force_host_platform_device_count=8). Both precisions run
with jax_enable_x64, so that a float32 run's dropout masks (jax.random draws float64 uniforms
under it) are the float64 run's: float32 results compare against float64 ones.
"""
import sys

import numpy as np

# Each method's smallest model (as tests/test_export.py).
VARIANTS = {
    'fcn': 'r18w16-d8', 'pspnet': 'r18w16-d8', 'psanet': 'r50-d8', 'deeplabv3': 'r18-d8',
    'deeplabv3plus': 'r18-d8', 'upernet': 'r18', 'hrnet': 'hr18s', 'gcnet': 'r50-d8',
    'nonlocal_net': 'r50-d8', 'ccnet': 'r50-d8', 'danet': 'r50-d8', 'ann': 'r50-d8',
    'ocrnet': 'hr18s'}
BATCH = 8


def _group(got, name):
  """A variable's collection ('params', 'batch_stats'), or an output's name."""
  return name.split('/')[0] if f'init:{name}' in got else name


def scales(got, mesh='8x1'):
  """Per collection, the largest change of ``mesh``'s step (an update that cancels to ~0 has no
  digits to compare); per output (loss, logits), its largest magnitude."""
  scale = {}
  for name in (k[len(mesh) + 1:] for k in got if k.startswith(f'{mesh}:')):
    moved = got[f'{mesh}:{name}'] - got[f'init:{name}'] if f'init:{name}' in got else (
        got[f'{mesh}:{name}'])
    scale[_group(got, name)] = max(scale.get(_group(got, name), 0.0), np.abs(moved).max())
  return scale


def relative_errors(got, mesh, ref, ref_mesh='8x1'):
  """Per collection or output: max |got's ``mesh`` - ref's ``ref_mesh``| / ``scales(ref)``."""
  scale, errors = scales(ref, ref_mesh), {}
  for name in (k[len(ref_mesh) + 1:] for k in ref if k.startswith(f'{ref_mesh}:')):
    err = np.abs(got[f'{mesh}:{name}'] - ref[f'{ref_mesh}:{name}']).max() / scale[
        _group(ref, name)]
    errors[_group(ref, name)] = max(errors.get(_group(ref, name), 0.0), float(err))
  return errors


def main(out, method, precision='float64', *meshes):
  import jax
  jax.config.update('jax_enable_x64', True)
  import flax
  import jax.numpy as jnp
  import parity
  from jseg import config as jconfig
  from jseg import inference, train
  from jseg import mesh as jmesh
  from jseg.models import build_segmentor

  config = jconfig.load(f'configs/{method}.py:{VARIANTS[method]}_64x64_2k_synthetic')
  if config.model.backbone.get('depth') == 50:
    parity.on_resnet18(config.model)
  elif config.model.backbone.type == 'HRNet':
    parity.one_module_hrnet(config.model)
  if method == 'upernet':  # 128 wide, not 512: 8 copies of its float64 state and step took 17 GB
    config.model.decode_head.channels = 128
  model = build_segmentor(config)
  # Rows that split evenly over 8 devices at every stride (jseg.mesh.check_mesh): 64 for the
  # D8 networks, 256 (and 16 columns) for UperNet, HRNet and OCRNet (output stride 32).
  stride = model.backbone.output_stride
  crop = (8 * stride, 40 if stride == 8 else 16)
  config.data.crop_size, config.train.batch_size = crop, BATCH
  # MMSeg's SGD recipe: the update is linear in the gradient. (AdamW's first update is
  # lr * sign(gradient): the float32 sign of a gradient that is ~0 is noise.)
  config.train.optimizer, config.train.lr, config.train.weight_decay = 'sgd', 0.01, 5e-4
  dtype = jnp.float64 if precision == 'float64' else jnp.float32
  tx = train.make_optimizer(config.train)
  variables = parity.nonzero_params(model.init(jax.random.key(0), np.zeros((1, *crop, 3))))
  variables = jax.tree_util.tree_map(lambda x: x.astype(dtype), variables)
  state0 = jax.device_get(train.init_state(tx, variables))  # host copies: the step donates
  rng = np.random.default_rng(0)
  images = rng.standard_normal((BATCH, *crop, 3)).astype(dtype)
  labels = rng.integers(0, config.data.num_classes, (BATCH, *crop)).astype(np.int32)
  labels[:, :5] = 255
  odd_images = rng.standard_normal((BATCH, 61, 37, 3)).astype(dtype)
  results = {f'init:{k}': np.asarray(v) for k, v in flax.traverse_util.flatten_dict(
      state0.variables, sep='/').items()}
  for spec in meshes or ('8x1', '2x4', '1x8'):
    data, spatial = map(int, spec.split('x'))
    mesh = jmesh.make_mesh(jax.devices()[:data * spatial], spatial=spatial)
    jmesh.check_mesh(config, mesh, stride)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    sharding = jax.tree_util.tree_map(lambda _: replicated, state0)
    step = train.jit_train_step(train.make_train_step(model, tx, config.model), mesh, sharding)
    state, scalars = step(jax.device_put(state0, sharding),
                          *train.global_batch(mesh, images, labels), jax.random.key(1))
    logits = jax.jit(lambda v, x: model.apply(v, x),
                     in_shardings=(replicated, jmesh.batch_sharding(mesh, 4)))(
                         state.variables, *train.global_batch(mesh, images))
    # Inference at a size that divides into nothing (the evaluator's path): XLA pads inside.
    predict = inference.make_predict_fn(model, config.test, False, mesh)
    odd = predict(state.variables, jax.device_put(
        odd_images, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))),
                  (67, 45))
    flat = flax.traverse_util.flatten_dict(jax.device_get(state.variables), sep='/')
    flat.update(loss=scalars['loss'], logits=logits, odd_size_logits=odd)
    results.update({f'{spec}:{k}': np.asarray(v) for k, v in flat.items()})
  np.savez(out, **results)


if __name__ == '__main__':
  main(*sys.argv[1:])
