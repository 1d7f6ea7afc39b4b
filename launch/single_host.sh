#!/usr/bin/env bash
# Train on every GPU of one host: one process drives all local devices (jax.jit over the mesh).
#   launch/single_host.sh configs/pspnet.py:r50-d8_512x1024_80k_cityscapes /work/psp [extra flags]
set -euo pipefail
config=$1; workdir=$2; shift 2
exec python -m jseg.main --config="$config" --workdir="$workdir" "$@"
