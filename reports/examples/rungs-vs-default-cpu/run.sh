#!/bin/bash
# issue 29 item 3: the CPU default vs the default rungs with continuation at equal wall time (2-core CPU)
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/exp NASX_DATA=/work/shared/datasets/cifar10 NASX_OFFLINE=1 MPLBACKEND=Agg
cd /work/runs/cmp
c=$(git -C /work/exp rev-parse --short HEAD)
echo "== default start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) commit $c"
/usr/bin/time -v python -m nasx explore --space resnext --study cmp-default --no-references --no-report > default.out 2> default.err
echo "== default end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== continue start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v python -m nasx explore --space resnext --schedule asha --continue --study cmp-continue --no-references --no-report > continue.out 2> continue.err
echo "== continue end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
