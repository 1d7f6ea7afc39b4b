"""One linear training loop: mesh, jitted sharded train_step (BN over the global batch = SyncBN),
periodic evaluation (jseg.evaluation), orbax checkpoints that resume at the same step, data
order and optimizer state."""
import contextlib
import os
import time
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jseg import config as jconfig
from jseg import checkpoints, evaluation, finetune, models, preemption, pretrained
from jseg import loss_scale as scaling
from jseg.data import transforms
from jseg.mesh import batch_sharding, check_mesh, make_mesh
from jseg.models import build_segmentor, segmentor_loss, total_loss


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  loss_scale: Optional[scaling.LossScale] = None  # float16 training (jseg.loss_scale)

  @property
  def variables(self):
    return {'params': self.params, 'batch_stats': self.batch_stats}


def lr_schedule(train_cfg, lr_mult: float = 1.0):
  """mmengine's learning rate per iteration (MMSeg's ``param_scheduler``), of a parameter group at
  ``lr_mult`` x ``lr`` (mmengine's paramwise ``lr_mult``: its decay ends at the same ``min_lr``).

  A linear warmup over ``warmup_iters`` (LinearLR: ``warmup_start_factor`` x lr at iteration 0,
  lr from iteration ``warmup_iters - 1`` on), then from the warmup's end ``W``: ``poly``, PolyLR,
  (lr - min_lr) * (1 - (it - W) / (end - W - 1)) ** power + min_lr, reaching min_lr at
  iteration ``schedule_end - 1`` (normally the last one); ``step``, MultiStepLR, x ``gamma`` at
  each of the ``milestones`` (iterations, counted from 0 as ``it``).
  """
  kind, warmup = train_cfg.lr_schedule, train_cfg.warmup_iters
  start = train_cfg.warmup_start_factor
  if kind not in ('poly', 'step'):
    raise ValueError(f"train.lr_schedule={kind!r}; valid: 'poly', 'step'")
  lr, min_lr, power = train_cfg.lr * lr_mult, train_cfg.min_lr, train_cfg.poly_power
  end = max((train_cfg.schedule_end or train_cfg.iterations) - warmup - 1, 1)

  def schedule(step):
    # In the default float dtype: an int32 step divides in float32, even in a float64 run.
    step = jnp.asarray(step, jnp.result_type(float))
    factor = (start + (1 - start) * jnp.minimum(step, warmup - 1) / max(warmup - 1, 1)
              if warmup else 1.0)
    if kind == 'step':
      passed = jnp.sum(step[..., None] >= jnp.asarray(train_cfg.milestones, step.dtype), -1)
      return factor * lr * train_cfg.gamma ** passed
    # end - (step - W) is exact in float32 (integers): 1 - (step - W) / end would cancel.
    frac = jnp.clip((end - (step - warmup)) / end, 0.0, 1.0)
    # Not optax.polynomial_schedule: jitted on XLA:CPU, 0.0 ** 0.9 is NaN there, which made
    # the last update of every run NaN.
    return factor * ((lr - min_lr) * jnp.where(frac > 0, frac, 1.0) ** power * (frac > 0)
                     + min_lr)

  return schedule


def concatenated(tree) -> jax.Array:
  """Every leaf of ``tree``, raveled into one vector: a reduction over it is one kernel. XLA:CPU
  compiles a kernel per reduction, and one per leaf doubled a train step's compile time."""
  return jnp.concatenate([leaf.ravel() for leaf in jax.tree_util.tree_leaves(tree)])


def clip_grad_norm(max_norm: float) -> optax.GradientTransformation:
  """torch's ``clip_grad_norm_`` (mmengine's ``clip_grad=dict(max_norm=...)``): every gradient
  times min(1, max_norm / (global L2 norm + 1e-6)); optax's clip_by_global_norm lacks the 1e-6."""

  def clip(grads, params=None):
    del params
    scale = jnp.minimum(1.0, max_norm / (jnp.linalg.norm(concatenated(grads)) + 1e-6))
    return jax.tree_util.tree_map(lambda g: g * scale.astype(g.dtype), grads)

  return optax.stateless(clip)


def make_optimizer(train_cfg) -> optax.GradientTransformation:
  """mmengine's OptimWrapper of MMSeg's recipes at :func:`lr_schedule`. ``sgd``: torch SGD,
  weight decay added to every gradient (BN and biases too), then momentum. ``adamw``: torch
  AdamW (``betas``, decoupled weight decay). The backbone's learning rate, and so AdamW's decay
  of it, is ``backbone_lr_mult`` x the others' (mmengine's ``paramwise_cfg`` custom_keys
  'backbone' lr_mult); the gradients are first clipped to ``clip_grad_norm`` where it is set."""

  def optimizer(lr_mult):
    schedule = lr_schedule(train_cfg, lr_mult)
    if train_cfg.optimizer == 'sgd':
      return optax.chain(optax.add_decayed_weights(train_cfg.weight_decay),
                         optax.sgd(schedule, momentum=train_cfg.momentum))
    if train_cfg.optimizer == 'adamw':
      b1, b2 = train_cfg.betas
      return optax.adamw(schedule, b1, b2, weight_decay=train_cfg.weight_decay)
    raise ValueError(f"train.optimizer={train_cfg.optimizer!r}; valid: 'sgd', 'adamw'")

  tx = optimizer(1.0)
  if train_cfg.backbone_lr_mult != 1.0:
    tx = optax.multi_transform(
        {'backbone': optimizer(train_cfg.backbone_lr_mult), 'rest': tx},
        lambda params: {k: 'backbone' if k == 'backbone' else 'rest' for k in params})
  if train_cfg.clip_grad_norm is not None:
    tx = optax.chain(clip_grad_norm(train_cfg.clip_grad_norm), tx)
  return tx


def init_variables(config, rng, model=None, init_from: Optional[str] = None) -> dict:
  """A run's initial variables: flax's initializers (MMSeg's ``init_weights`` rules), then
  ``init_from``'s matching variables (:func:`jseg.finetune.load`) or, without it, the backbone
  from ``config.model.pretrained`` (:func:`jseg.pretrained.load_backbone`; ``init_from``
  replaces at least 90% of the backbone, so its ImageNet file is not needed)."""
  variables = models.init_variables(model or build_segmentor(config), rng)
  if init_from:
    return finetune.load(variables, config, init_from)
  return pretrained.load_backbone(variables, config)


def init_state(tx, variables, scaler: Optional[scaling.LossScale] = None) -> TrainState:
  """The state at step 0 of ``variables``: fresh optimizer state, loss scale ``scaler``
  (:func:`jseg.loss_scale.from_config`)."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=variables['params'],
                    batch_stats=variables['batch_stats'], opt_state=tx.init(variables['params']),
                    loss_scale=scaler)


def normalize_images(images, sizes, data_cfg) -> jax.Array:
  """On the device, what the host's Normalize + Pad made of the batch, bit for bit
  (:func:`jseg.data.transforms.train_pipeline`): ``images`` uint8 BGR (N, H, W, 3), each padded
  with 0 at the bottom / right of its ``sizes`` (h, w) -> float32 RGB ``(x - mean) / std``, 0 in
  the padding (MMSeg pads after normalizing). The values are looked up in a table of the host's
  own for 0..255: XLA divides by a constant as a product with its reciprocal, 1 ulp off."""
  levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)  # (256, 3)
  table = transforms.Normalize(data_cfg['mean'], data_cfg['std'])({'img': levels})['img']
  x = jnp.asarray(table)[images[..., ::-1].astype(jnp.int32), jnp.arange(3)]
  rows = jnp.arange(images.shape[1])[None, :, None] < sizes[:, 0, None, None]
  cols = jnp.arange(images.shape[2])[None, None, :] < sizes[:, 1, None, None]
  return jnp.where((rows & cols)[..., None], x, jnp.float32(0))


def make_train_step(model, tx, model_cfg, data_cfg=None):
  """``train_step(state, images, labels, rng) -> (state, scalars)``, to be jitted: ``images``
  normalized (N, H, W, 3), ``labels`` int32 (N, H, W); with ``data_cfg``, the loader's batch
  (:func:`jseg.data.loader.train_batches`): ``images`` the pair ``(uint8 images, sizes)``, which
  the step normalizes (:func:`normalize_images`), ``labels`` uint8. A step whose
  loss or gradient is not finite changes nothing but ``state.step`` (``scalars['skipped']`` is
  1): no non-finite value reaches the state (``train.nan_policy`` decides what follows). With
  a ``state.loss_scale``, the gradients are of the scaled loss, unscaled before the update, and
  ``scalars['loss_scale']`` is the scale this step used (an overflow updates it)."""

  def train_step(state: TrainState, images, labels, rng):
    if data_cfg is not None:
      images, labels = normalize_images(*images, data_cfg), labels.astype(jnp.int32)
    rng = jax.random.fold_in(rng, state.step)
    scaler = state.loss_scale

    def loss_fn(params):
      outputs, updates = model.apply({'params': params, 'batch_stats': state.batch_stats},
                                     images, train=True, mutable=['batch_stats'],
                                     rngs={'dropout': rng})
      losses = segmentor_loss(model_cfg, outputs, labels)
      loss = total_loss(losses)
      return (scaler.scale_loss(loss) if scaler else loss), (losses, updates['batch_stats'])

    grads, (losses, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = scaler.unscale(grads) if scaler else grads
    loss = total_loss(losses)
    finite = jnp.isfinite(loss) & jnp.all(jnp.isfinite(concatenated(grads)))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    keep = lambda new, old: jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = state.replace(
        step=state.step + 1,
        params=keep(optax.apply_updates(state.params, updates), state.params),
        batch_stats=keep(batch_stats, state.batch_stats),
        opt_state=keep(opt_state, state.opt_state),
        loss_scale=scaler.update(finite) if scaler else None)
    scalars = dict(losses, loss=loss, skipped=1 - finite.astype(jnp.int32))
    return new_state, dict(scalars, loss_scale=scaler.scale) if scaler else scalars

  return train_step


class NonFinitePolicy:
  """``train.nan_policy`` on the host, from each step's scalars: ``stop`` raises at the first
  skipped step naming it and its loss terms; ``skip`` counts the skipped steps and raises after
  ``train.max_consecutive_skips`` in a row. Under loss scaling, a step with a finite loss and a
  non-finite gradient is an overflow: the scale's business (``overflows``), never an error."""

  def __init__(self, train_cfg):
    if train_cfg.nan_policy not in ('stop', 'skip'):
      raise ValueError(f"train.nan_policy={train_cfg.nan_policy!r}; valid: 'stop', 'skip'")
    self.policy, self.limit = train_cfg.nan_policy, train_cfg.max_consecutive_skips
    self.in_a_row, self.skipped, self.overflows = 0, [], []

  def check(self, steps) -> None:
    """``steps``: ``(iteration, scalars)`` in order, not yet checked."""
    for it, scalars in jax.device_get(steps):
      if not scalars['skipped']:
        self.in_a_row = 0
        continue
      if 'loss_scale' in scalars and np.isfinite(scalars['loss']):
        self.overflows.append(it)
        continue
      self.in_a_row += 1
      self.skipped.append(it)
      bad = {k: float(v) for k, v in scalars.items()
             if k not in ('skipped', 'loss_scale') and not np.isfinite(v)}
      what = (', '.join(f'{k}={v}' for k, v in sorted(bad.items())) if bad else
              'the losses are finite, a gradient is not')
      if self.policy == 'stop':
        raise FloatingPointError(
            f'iteration {it}: non-finite loss ({what}); the update was not applied and the '
            'saved checkpoints are finite. Resume with a lower train.lr, or '
            '--config.train.nan_policy=skip to drop such updates')
      if self.in_a_row > self.limit:
        raise FloatingPointError(
            f'iteration {it}: {self.in_a_row} updates in a row skipped for non-finite losses '
            f'({what}); train.max_consecutive_skips={self.limit}')


def jit_train_step(train_step, mesh: Mesh, state_sharding, loader_batch: bool = False):
  """The step jitted over ``mesh``: batch as :func:`batch_sharding` (``loader_batch``: images
  the loader's pair ``(images, sizes)``), state replicated and donated. XLA partitions the
  convolutions along H (halo exchange) and makes the reductions (BatchNorm, losses) collectives."""
  images = batch_sharding(mesh, 4)
  if loader_batch:
    images = (images, batch_sharding(mesh, 2))
  replicated = NamedSharding(mesh, P())
  return jax.jit(train_step,
                 in_shardings=(state_sharding, images, batch_sharding(mesh, 3), replicated),
                 out_shardings=(state_sharding, replicated), donate_argnums=0)


def global_batch(mesh: Mesh, *local_arrays):
  """Global arrays (:func:`batch_sharding`) from this process's part of the batch (e.g. images,
  labels, sizes; multi-host safe)."""
  return tuple(jax.make_array_from_process_local_data(batch_sharding(mesh, x.ndim), x)
               for x in local_arrays)


def _checkpoint_managers(workdir: str, keep: int):
  """``last`` keeps the newest ``keep`` states; ``best`` keeps the best-mIoU one. Both delete
  the temporary directories of writes a kill interrupted (never read: not listed as steps).
  Their own barrier names: with several processes both save an evaluated step at once."""
  root = os.path.abspath(os.path.join(workdir, 'checkpoints'))

  def options(name, **kwargs):
    return ocp.CheckpointManagerOptions(
        create=True, cleanup_tmp_directories=True, **kwargs,
        multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name))

  last = ocp.CheckpointManager(os.path.join(root, 'last'), options=options('last', max_to_keep=keep))
  best = ocp.CheckpointManager(os.path.join(root, 'best'), options=options(
      'best', max_to_keep=1, best_fn=lambda m: m['mIoU'], best_mode='max'))
  return last, best


def _restore_or_init(manager, model, tx, config, mesh: Mesh, init_from: Optional[str]):
  """(state replicated over ``mesh``, resumed?) from the latest checkpoint, else fresh."""
  scaler = scaling.from_config(config)
  abstract = jax.eval_shape(lambda rng, image: init_state(tx, model.init(rng, image), scaler),
                            jax.random.key(config.seed),
                            jax.ShapeDtypeStruct((1, *config.data.crop_size, 3), jnp.float32))
  sharding = jax.tree_util.tree_map(lambda _: NamedSharding(mesh, P()), abstract)
  latest = manager.latest_step()
  if latest is None:
    state = init_state(tx, init_variables(config, jax.random.key(config.seed), model, init_from),
                       scaler)
    return jax.device_put(state, sharding), False
  target = jax.tree_util.tree_map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, sharding)
  return manager.restore(latest, args=ocp.args.StandardRestore(target)), True


def train_and_evaluate(config, workdir: str, stop_at: Optional[int] = None,
                       init_from: Optional[str] = None) -> dict:
  """Trains ``config`` in ``workdir`` (resuming from its last checkpoint), evaluating as it goes.

  ``stop_at`` ends this run after that iteration (with a checkpoint) without changing the
  schedule, as a preempted job would; so does SIGTERM or SIGINT (:mod:`jseg.preemption`).
  ``init_from`` starts a new run from another checkpoint's weights (:func:`jseg.finetune.load`).
  Returns the last evaluation's metrics.
  """
  from jseg import report
  from jseg.data import loader

  config = jconfig.resolve_num_classes(config)
  train_cfg = config.train
  eval_every, save_every, log_every = (max(1, train_cfg.eval_interval),
                                       max(1, train_cfg.checkpoint_interval),
                                       max(1, train_cfg.log_interval))
  is_main = jax.process_index() == 0
  mesh = make_mesh(spatial=config.mesh.spatial)
  model = build_segmentor(config)
  check_mesh(config, mesh, model.backbone.output_stride)
  tx = make_optimizer(train_cfg)
  nonfinite = NonFinitePolicy(train_cfg)
  last, best = _checkpoint_managers(workdir, train_cfg.keep_checkpoints)
  # Before restoring: a workdir of another model fails naming the keys, not the shapes.
  checkpoints.check_workdir_config(workdir, config, last.latest_step() is not None, write=is_main)
  state, resumed = _restore_or_init(last, model, tx, config, mesh, init_from)
  state_sharding = jax.tree_util.tree_map(lambda x: x.sharding, state)
  train_step = jit_train_step(make_train_step(model, tx, config.model, config.data), mesh,
                              state_sharding, loader_batch=True)
  start = int(state.step)
  log = report.Reporter(workdir, config, enabled=is_main, start=start)
  processes = jax.process_count()
  log.text(f'mesh {mesh.shape["data"]} x {mesh.shape["spatial"]} (data x spatial) over '
           f'{mesh.size} devices in {processes} process{"es" if processes > 1 else ""}')
  if resumed:
    log.text(f'resumed from {workdir} at iteration {start}'
             + (f' (--init_from={init_from} applies to new runs only)' if init_from else ''))
  rng = jax.random.key(config.seed + 1)
  lr = lr_schedule(train_cfg)
  evaluate = evaluation.Evaluator(config, model, log=log.text)
  metrics, unchecked, running = {}, [], None
  tic, last_logged, waited = time.time(), start, 0.0
  batches = loader.train_batches(config, start_step=start)
  end = min(train_cfg.iterations, stop_at or train_cfg.iterations)
  # Leaving the block (also by an error) waits for the started saves: they hold finite states.
  with (checkpoints.disk_errors(workdir), contextlib.closing(batches), last, best,
        preemption.StopOnSignal() as stop):
    for step in range(start, end):
      fetch = time.time()
      images, labels, sizes = global_batch(mesh, *next(batches))
      waited += time.time() - fetch
      state, scalars = train_step(state, (images, sizes), labels, rng)
      # One step queued behind the running one, no more: the time waited for a batch is then
      # about the time the device waits for it (the log's input wait).
      jax.block_until_ready(running)
      running = scalars
      it = step + 1
      unchecked.append((it, scalars))
      stopping = stop.requested(it)
      evaluating = it % eval_every == 0 or it == train_cfg.iterations
      saving = evaluating or stopping or it % save_every == 0 or it == end
      if saving or it % log_every == 0:
        nonfinite.check(unchecked)  # before any save: raises under nan_policy=stop
        unchecked = []
      if it % log_every == 0 or it == train_cfg.iterations:
        elapsed = time.time() - tic
        log.train(it, jax.device_get(scalars), float(lr(step)),
                  (it - last_logged) * train_cfg.batch_size / elapsed, waited / elapsed,
                  nonfinite.skipped, nonfinite.overflows)
        tic, last_logged, waited = time.time(), it, 0.0
      if evaluating:
        metrics = evaluate(state.variables, progress=is_main)
        log.eval(it, metrics)
        best.save(it, args=ocp.args.StandardSave(state), metrics={'mIoU': float(metrics['mIoU'])})
        tic, waited = time.time(), 0.0
      if saving:
        last.save(it, args=ocp.args.StandardSave(state))
        log.save_history()
      if stopping:
        break
  if stop.received:
    log.text(f'stopped by {stop.received} after iteration {it}: the state is in '
             f'{last.directory / str(it)}; run the same command to resume')
  log.close(model, state.variables, num_images=0 if stop.received else 4)
  return metrics
