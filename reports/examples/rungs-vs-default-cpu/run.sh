#!/bin/bash
. /work/main/.venv/bin/activate
export NASX_DATA=/work/shared/datasets/cifar10 NASX_OFFLINE=1 MPLBACKEND=Agg
cd /tmp/cmp
echo "== rungs start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git -C /work/main rev-parse --short HEAD)"
/usr/bin/time -v nasx explore --space resnext --rungs e1-f0.125,e1-f0.5 --eta 4 --study cmp-rungs --no-references --no-report > rungs.out 2> rungs.err
echo "== rungs end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== retrain start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
python /work/main/scripts/compare_fronts.py --studies-dir studies --study e2e-after --study cmp-rungs --seeds 1,2 --retrain cmp-retrain --out /tmp/cmp/out > compare.out 2> compare.err
echo "== retrain end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
