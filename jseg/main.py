"""jseg's entry point: train, evaluate, predict or benchmark one config.

    python -m jseg.main --config=configs/pspnet.py:r18-d8_64x64_2k_synthetic --workdir=/tmp/psp
    python -m jseg.main --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --mode=eval --checkpoint=pspnet.pth
    python -m jseg.main --config=configs/pspnet.py:r50-d8_512x1024_80k_cityscapes \
        --mode=predict --checkpoint=pspnet.pth --image=street.png --out=street_seg.png

Any config value can be overridden: ``--config.train.iterations=1000``.
"""
from absl import app, flags, logging
from ml_collections import config_flags

from jseg import malloc_tunables

config_flags.DEFINE_config_file('config', None, 'config file[:variant]', lock_config=True)
flags.DEFINE_string('workdir', None, 'directory for checkpoints, logs and pictures')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict', 'benchmark'], 'what to do')
flags.DEFINE_string('checkpoint', None, '--mode=eval|predict|benchmark: orbax checkpoint '
                    'directory, training workdir, MMSeg .pth, or zoo: MMSeg\'s published weights '
                    'of --config (zoo:NAME: of config NAME; downloaded once) (default: the best '
                    'checkpoint in --workdir)')
flags.DEFINE_string('init_from', None, '--mode=train: fine-tune from these weights (orbax '
                    'checkpoint, training workdir, MMSeg .pth or zoo:NAME, e.g. '
                    'zoo:pspnet_r50-d8_512x1024_80k_cityscapes): variables of the same shape are '
                    'loaded, classifiers re-initialized when the class count differs; optimizer '
                    'and step start fresh')
flags.DEFINE_string('image', None, '--mode=predict: the image to segment')
flags.DEFINE_string('out', None, '--mode=predict: where to write the overlay (PNG)')
flags.DEFINE_bool('tta', False, '--mode=predict: multi-scale + flip test-time augmentation')
flags.DEFINE_bool('distributed', False, 'call jax.distributed.initialize() (multi-host launch); '
                  'without the next three flags it reads them from SLURM\'s (or another cluster '
                  'manager\'s) environment')
flags.DEFINE_string('coordinator_address', None, '--distributed: host:port of process 0')
flags.DEFINE_integer('num_processes', None, '--distributed: number of processes')
flags.DEFINE_integer('process_id', None, '--distributed: this process\'s index')
flags.DEFINE_integer('stop_at', None, '--mode=train: end this run after that iteration, with a '
                     'checkpoint, without changing the schedule (the same command resumes)')
flags.DEFINE_integer('benchmark_images', 200, '--mode=benchmark: images timed at batch 1, '
                     'the first 5 not counted (MMSeg: 200)')
flags.DEFINE_string('benchmark_size', None, '--mode=benchmark: original image size HxW '
                    '(default: the data set\'s usual one, e.g. 1024x2048 for Cityscapes)')
flags.DEFINE_bool('benchmark_train', False, '--mode=benchmark: also time the train step')
flags.DEFINE_integer('benchmark_train_batch', None, '--mode=benchmark: global batch of the '
                     'timed train step (default: the config\'s; smaller for small machines)')
flags.DEFINE_integer('benchmark_train_steps', 20, '--mode=benchmark: timed train steps')
flags.DEFINE_string('benchmark_json', None, '--mode=benchmark: also write the results here')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS


def ensure_data(name: str, split: str) -> None:
  """Generates the synthetic set on first use; any other missing data set stops the run
  with the command that prepares it."""
  from jseg.data import datasets, prepare
  try:
    datasets.open_split(name, split)
  except FileNotFoundError as e:
    if name != 'synthetic':
      raise SystemExit(f'error: {e}')
    prepare.prepare('synthetic')


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax and tfds log every file at INFO
  import jax
  if FLAGS.distributed:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  from jseg import train, weights
  from jseg import config as jconfig
  from jseg.data import datasets
  try:  # a folder variant takes its class count from the prepared data set
    config = jconfig.resolve_num_classes(FLAGS.config)
  except FileNotFoundError as e:
    raise SystemExit(f'error: {e}')
  if FLAGS.mode == 'benchmark':  # random inputs: needs no data set
    from jseg import benchmark
    variables = weights.load_variables(config, FLAGS.checkpoint) if FLAGS.checkpoint else None
    benchmark.run(config, variables,
                  num_images=FLAGS.benchmark_images,
                  original_size=FLAGS.benchmark_size and benchmark.parse_size(FLAGS.benchmark_size),
                  train=FLAGS.benchmark_train, train_batch=FLAGS.benchmark_train_batch,
                  train_steps=FLAGS.benchmark_train_steps, json_path=FLAGS.benchmark_json)
    return
  if FLAGS.mode == 'predict':  # one image: needs no data set
    from jseg import apis
    if not (FLAGS.image and FLAGS.out and (FLAGS.checkpoint or FLAGS.workdir)):
      raise app.UsageError('--mode=predict needs --image, --out and --checkpoint (or --workdir)')
    seg = apis.init_segmentor(config, FLAGS.checkpoint or FLAGS.workdir)
    label_map = apis.inference_segmentor(seg, FLAGS.image, tta=FLAGS.tta)
    apis.show_result(FLAGS.image, label_map, out_file=FLAGS.out, config=config)
    print(f'wrote {FLAGS.out}')
    return
  if FLAGS.mode == 'train':
    if not FLAGS.workdir:
      raise app.UsageError('--mode=train needs --workdir')
    ensure_data(config.data.dataset, 'train')
    ensure_data(config.data.test_dataset, 'val')
    train.train_and_evaluate(config, FLAGS.workdir, stop_at=FLAGS.stop_at,
                             init_from=FLAGS.init_from)
  elif FLAGS.mode == 'eval':
    if not (FLAGS.checkpoint or FLAGS.workdir):
      raise app.UsageError('--mode=eval needs --checkpoint or --workdir')
    ensure_data(config.data.test_dataset, 'val')
    from jseg import metrics
    from jseg.models import build_segmentor
    checkpoint = weights.resolve(FLAGS.checkpoint or FLAGS.workdir, config)
    variables = weights.load_variables(config, checkpoint)
    from jseg import evaluation
    evaluate = evaluation.Evaluator(config, build_segmentor(config),
                                    log=print if jax.process_index() == 0 else None)
    result = evaluate(variables)
    if jax.process_index() == 0:
      names = datasets.dataset_info(config.data.test_dataset).classes
      print(f'{config.name} on {config.data.test_dataset} val ({checkpoint}):')
      print(metrics.format_table(result, names))


if __name__ == '__main__':
  malloc_tunables.reexec_with_tunables()
  app.run(main)
