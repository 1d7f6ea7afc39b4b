"""The device mesh ``('data', 'spatial')``: images split over ``data``, each image's rows over
``spatial`` (config ``mesh.spatial``; 1: data parallel only). XLA's SPMD partitioner splits the
convolutions along H with halo exchanges and turns the reductions (BatchNorm over the global
batch, losses, attention, pooling) into collectives."""
import logging
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices=None, spatial: int = 1) -> Mesh:
  """The 2-d mesh ``('data', 'spatial')`` over ``devices`` (default: every device of every
  process): images split over ``data``, each image's rows over ``spatial`` (``mesh.spatial``
  in the config; 1: data parallel only)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  if spatial < 1 or devices.size % spatial:
    raise ValueError(f'mesh.spatial={spatial} does not divide the {devices.size} devices')
  return Mesh(devices.reshape(devices.size // spatial, spatial), ('data', 'spatial'))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Images (N, H, W, C) and labels (N, H, W): N over ``data``, H over ``spatial``; smaller
  per-image arrays (the loader's sizes) over ``data``."""
  return NamedSharding(mesh, P('data', 'spatial') if ndim >= 3 else P('data'))


def check_mesh(config, mesh: Mesh, output_stride: int) -> None:
  """The train batch divides over ``data`` and the crop's rows split evenly over ``spatial``
  at every stride of the network (``output_stride``: :func:`uneven_rows`), else ValueError
  naming the sizes. Even blocks are what the spatial step is verified on: on 8 row blocks,
  XLA's partitioner got the kernel gradient of a stride-2 convolution 41-74% wrong where its
  input's blocks held at most 1 row (UPerNet's step on 64-row crops on mesh 1 x 8: 1.5e-3 off
  in float64; docs/benchmark.md)."""
  data, spatial = mesh.shape['data'], mesh.shape['spatial']
  if config.train.batch_size % data:
    raise ValueError(f'train.batch_size={config.train.batch_size} is not divisible by the '
                     f'{data} data-parallel groups of the mesh ({mesh.size} devices / '
                     f'mesh.spatial={spatial})')
  uneven = uneven_rows(config.data.crop_size[0], spatial, output_stride)
  if uneven:
    raise ValueError(f'data.crop_size={tuple(config.data.crop_size)}: {uneven}')


def uneven_rows(height: int, spatial: int, output_stride: int) -> Optional[str]:
  """Why ``height`` rows do not split evenly over ``spatial`` devices at every stride of a
  network of ``output_stride`` (8: D8 ResNets, 32: the others and HRNet), or None where they
  do: ``height`` divides by ``spatial * output_stride``. Elsewhere XLA pads the blocks (the
  forward stays exact) but may gather whole maps (XLA's cost analysis, FCN R-18-D8 on 2
  devices: 38 rows computed whole on each device, 40 rows 0.86 of the whole, 48 rows 0.60)."""
  multiple = spatial * output_stride
  if spatial == 1 or height % multiple == 0:
    return None
  below = height // multiple * multiple
  return (f'{height} rows on mesh.spatial={spatial} at the network\'s output stride '
          f'{output_stride} are not a multiple of {multiple}: the rows do not split evenly at '
          f'every stride. Even: {" or ".join(map(str, filter(None, (below, below + multiple))))}')


def spatial_constraint(x: jax.Array, mesh: Mesh, output_stride: int = 1) -> jax.Array:
  """``x`` (N, H, W, C) inside a jitted function, split as :func:`batch_sharding` on ``mesh``:
  XLA pads uneven blocks internally, so any image size runs (a warning, once per traced size,
  where its rows do not split evenly at the network's ``output_stride``: :func:`uneven_rows`;
  the forward is exact on any blocks, its kernel gradients are not: :func:`check_mesh`)."""
  if mesh.shape['spatial'] == 1:
    return x
  uneven = uneven_rows(x.shape[1], mesh.shape['spatial'], output_stride)
  if uneven:
    logging.getLogger('jseg').warning('input: %s; the logits are exact, but XLA may compute '
                                      'whole maps on each device (less memory saved)', uneven)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P('data', 'spatial')))
