"""The device mesh ``('data', 'spatial')``: images split over ``data``, each image's rows over
``spatial`` (config ``mesh.spatial``; 1: data parallel only). XLA's SPMD partitioner splits the
convolutions along H with halo exchanges and turns the reductions (BatchNorm over the global
batch, losses, attention, pooling) into collectives."""
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


def check_mesh(config, mesh: Mesh) -> None:
  """The train batch divides over ``data`` and the crop's rows over ``spatial`` (its arrays go
  to the devices in equal blocks), else ValueError naming the sizes."""
  data, spatial = mesh.shape['data'], mesh.shape['spatial']
  if config.train.batch_size % data:
    raise ValueError(f'train.batch_size={config.train.batch_size} is not divisible by the '
                     f'{data} data-parallel groups of the mesh ({mesh.size} devices / '
                     f'mesh.spatial={spatial})')
  if config.data.crop_size[0] % spatial:
    raise ValueError(f'data.crop_size={tuple(config.data.crop_size)}: its height does not '
                     f'divide into mesh.spatial={spatial} row blocks')


def spatial_constraint(x: jax.Array, mesh: Mesh) -> jax.Array:
  """``x`` (N, H, W, C) inside a jitted function, split as :func:`batch_sharding` on ``mesh``:
  XLA pads uneven blocks internally (exact: the padding is never part of a result), so any
  image size runs."""
  if mesh.shape['spatial'] == 1:
    return x
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P('data', 'spatial')))
