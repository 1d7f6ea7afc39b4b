"""Loss scaling for float16 training: MMSeg's ``AmpOptimWrapper`` (torch's ``GradScaler``).

The loss is multiplied by ``scale`` before the backward pass, so that small float16 gradients
do not flush to zero, and the gradients are divided by it after. A step whose gradients are not
finite (an overflow) is skipped; a dynamic scale then halves, and doubles after
``growth_interval`` finite steps in a row. Written here, not taken from a library: these are
torch's ``GradScaler`` rules and defaults, which MMSeg's fp16 rows were trained with.
"""
from typing import Optional

import flax
import jax
import jax.numpy as jnp

DYNAMIC = 'dynamic'
INIT_SCALE, GROWTH_INTERVAL = 2.0**16, 2000  # torch.amp.GradScaler's defaults


class LossScale(flax.struct.PyTreeNode):
  scale: jax.Array  # float32 scalar
  good_steps: jax.Array  # int32: finite steps since the scale last changed
  dynamic: bool = flax.struct.field(pytree_node=False, default=True)
  growth_interval: int = flax.struct.field(pytree_node=False, default=GROWTH_INTERVAL)

  @classmethod
  def create(cls, scale: Optional[float] = None, dynamic: bool = True,
             growth_interval: int = GROWTH_INTERVAL) -> 'LossScale':
    """``scale`` defaults to :data:`INIT_SCALE`."""
    scale = INIT_SCALE if scale is None else scale
    return cls(scale=jnp.asarray(scale, jnp.float32), good_steps=jnp.zeros((), jnp.int32),
               dynamic=dynamic, growth_interval=growth_interval)

  def scale_loss(self, loss):
    return loss * self.scale.astype(loss.dtype)

  def unscale(self, grads):
    return jax.tree_util.tree_map(lambda g: g / self.scale.astype(g.dtype), grads)

  def update(self, finite) -> 'LossScale':
    """The scale for the next step after one whose gradients were ``finite`` (torch's
    ``_amp_update_scale_``: x0.5 on an overflow, x2 after ``growth_interval`` good steps)."""
    if not self.dynamic:
      return self
    good = self.good_steps + 1
    grow = finite & (good >= self.growth_interval)
    scale = jnp.where(finite, jnp.where(grow, self.scale * 2, self.scale), self.scale * 0.5)
    return self.replace(scale=scale, good_steps=jnp.where(finite & ~grow, good, 0))


def from_config(config) -> Optional[LossScale]:
  """``train.loss_scale`` of a full config: ``'dynamic'``, a number (a static scale, as
  MMSeg's ``loss_scale=512.``) or ``None`` (``'dynamic'`` for ``precision=float16``, else no
  scaling)."""
  value = config.train.get('loss_scale')
  if value is None:
    value = DYNAMIC if config.get('precision') == 'float16' else None
  if value is None:
    return None
  if value == DYNAMIC:
    return LossScale.create()
  if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
    return LossScale.create(float(value), dynamic=False)
  raise ValueError(f"train.loss_scale={value!r}; valid: 'dynamic', a positive number (a static "
                   'scale) or None (dynamic for precision=float16, else none)')
