#!/usr/bin/env bash
# Train on every GPU of one host: one process drives all local devices (jax.jit over the mesh).
#   launch/single_host.sh configs/pspnet.py:r50-d8_512x1024_80k_cityscapes /work/psp [extra flags]
# Full 1024x2048 frames on 8 devices, each frame's rows split over 4 of them (jseg/mesh.py):
#   launch/single_host.sh configs/pspnet.py:r50-d8_512x1024_80k_cityscapes /work/psp_full \
#       --config.mesh.spatial=4 '--config.data.crop_size=(1024, 2048)' --config.train.batch_size=2
set -euo pipefail
config=$1; workdir=$2; shift 2
exec python -m jseg.main --config="$config" --workdir="$workdir" "$@"
