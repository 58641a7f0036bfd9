#!/bin/bash
. /work/main/.venv/bin/activate
export NASX_DATA=/work/shared/datasets/cifar10 NASX_OFFLINE=1 MPLBACKEND=Agg
cd /tmp/repreal
echo "== repeat start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git -C /work/main rev-parse --short HEAD)"
/usr/bin/time -v nasx repeat e2e-after --repeats 2 --workers 2 --device cpu --out /tmp/repreal/report > repeat.out 2> repeat.err
echo "== repeat end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
