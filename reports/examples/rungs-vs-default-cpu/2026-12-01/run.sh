#!/bin/bash
. /work/main/.venv/bin/activate
export NASX_DATA=/work/shared/datasets/cifar10 NASX_OFFLINE=1 MPLBACKEND=Agg
cd /tmp/cmp
echo "== rungs start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git -C /work/main rev-parse --short HEAD)"
/usr/bin/time -v nasx explore --space resnext --rungs e1-f0.125,e1-f0.5 --eta 4 --study cmp-rungs --no-references --no-report > rungs.out 2> rungs.err
echo "== rungs end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== retrain start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
# ran on 2026-12-01 as scripts/compare_fronts.py with the same studies, seeds and retrain study; the script became `nasx compare`
nasx compare e2e-after cmp-rungs --studies-dir studies --seeds 1,2 --retrain cmp-retrain --workers 2 --device cpu --out /tmp/cmp/out > compare.out 2> compare.err
echo "== retrain end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
