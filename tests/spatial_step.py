"""Train steps of one method on 8 host devices, on several ('data', 'spatial') meshes, from the
same state and batch; saves each mesh's losses, gradients' effect (the updated parameters and
BatchNorm statistics), eval-mode logits, and the evaluator's prediction at a size that does not
divide (61 x 37 resized to 67 x 45).

    python tests/spatial_step.py OUT.npz METHOD [float64|float32] [MESHES...]

MESHES are DATAxSPATIAL (default 8x1 2x4 1x8). Run in a subprocess: the device count is fixed
when JAX starts (the caller sets --xla_force_host_platform_device_count=8).
"""
import sys

import numpy as np

# Each method's smallest model (as tests/test_export.py) at a crop whose height divides by 8.
VARIANTS = {
    'fcn': 'r18w16-d8', 'pspnet': 'r18w16-d8', 'psanet': 'r50-d8', 'deeplabv3': 'r18-d8',
    'deeplabv3plus': 'r18-d8', 'upernet': 'r18', 'hrnet': 'hr18s', 'gcnet': 'r50-d8',
    'nonlocal_net': 'r50-d8', 'ccnet': 'r50-d8', 'danet': 'r50-d8', 'ann': 'r50-d8',
    'ocrnet': 'hr18s'}
CROP = (64, 40)
BATCH = 8


def main(out, method, precision='float64', *meshes):
  import jax
  jax.config.update('jax_enable_x64', precision == 'float64')
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
  config.data.crop_size, config.train.batch_size = CROP, BATCH
  dtype = jnp.float64 if precision == 'float64' else jnp.float32
  model = build_segmentor(config)
  tx = train.make_optimizer(config.train)
  variables = parity.nonzero_params(model.init(jax.random.key(0), np.zeros((1, *CROP, 3))))
  variables = jax.tree_util.tree_map(lambda x: x.astype(dtype), variables)
  state0 = jax.device_get(train.init_state(tx, variables))  # host copies: the step donates
  rng = np.random.default_rng(0)
  images = rng.standard_normal((BATCH, *CROP, 3)).astype(dtype)
  labels = rng.integers(0, config.data.num_classes, (BATCH, *CROP)).astype(np.int32)
  labels[:, :5] = 255
  odd_images = rng.standard_normal((BATCH, 61, 37, 3)).astype(dtype)
  results = {f'init:{k}': np.asarray(v) for k, v in flax.traverse_util.flatten_dict(
      state0.variables, sep='/').items()}
  for spec in meshes or ('8x1', '2x4', '1x8'):
    data, spatial = map(int, spec.split('x'))
    mesh = jmesh.make_mesh(jax.devices()[:data * spatial], spatial=spatial)
    jmesh.check_mesh(config, mesh)
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
