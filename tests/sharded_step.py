"""Runs training steps of a small model on a mesh and saves the resulting variables.

    python tests/sharded_step.py OUT.npz NUM_DEVICES

Used by test_train_step.py in subprocesses, since the CPU device count is fixed when JAX
starts. The global batch is the same for every device count.
"""
import sys

import numpy as np


def main(out, num_devices):
  import flax
  import jax
  from jseg import config as jconfig
  from jseg import train
  from jseg.models import build_segmentor

  config = jconfig.load('configs/fcn.py:r18-d8_512x1024_80k_cityscapes')
  config.unlock()
  config.data.crop_size = (33, 41)
  config.train.batch_size = 8
  model = build_segmentor(config)
  tx = train.make_optimizer(config.train)
  devices = [d for d in jax.devices()][:num_devices]
  from jseg import mesh as jmesh
  mesh = jmesh.make_mesh(devices)
  state = train.init_state(tx, model.init(jax.random.key(0), np.zeros((1, 33, 41, 3), np.float32)))
  sharding = jax.tree_util.tree_map(lambda _: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()), state)
  state = jax.device_put(state, sharding)
  step = train.jit_train_step(train.make_train_step(model, tx, config.model), mesh, sharding)
  rng = np.random.default_rng(0)
  for _ in range(2):
    images = rng.standard_normal((8, 33, 41, 3)).astype(np.float32)
    labels = rng.integers(0, 19, (8, 33, 41)).astype(np.int32)
    labels[:, :5] = 255
    state, _ = step(state, *train.global_batch(mesh, images, labels), jax.random.key(1))
  flat = flax.traverse_util.flatten_dict(jax.device_get(state.variables), sep='/')
  np.savez(out, **{k: np.asarray(v) for k, v in flat.items()})


if __name__ == '__main__':
  main(sys.argv[1], *map(int, sys.argv[2:]))
