#!/bin/bash
# after the equal-wall-time studies: retrain both fronts under 3 seeds, then the bottom-rung fidelity run
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/exp NASX_DATA=/work/shared/datasets/cifar10 NASX_OFFLINE=1 MPLBACKEND=Agg
while kill -0 23588 2>/dev/null; do sleep 10; done
touch /work/runs/cpu-free
cd /work/runs/cmp
echo "== retrain start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v python /work/exp/scripts/compare_fronts.py --studies-dir studies --study cmp-default --study cmp-continue --seeds 1,2,3 --retrain cmp-retrain --out /work/runs/cmp/out > compare.out 2> compare.err
echo "== retrain end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
cd /work/runs/fid
echo "== fidelity start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v python -m nasx fidelity --space resnext --corner cpu --samples 24 --val-size 2000 --name rungs-cpu --workers 2 \
  --proxy e1-f0.02 --proxy e1-f0.0333 --proxy e1-f0.0556 --proxy e1-f0.08-r16 --proxy e1-f0.222-r16 --proxy e1-f0.0988-r24 \
  --reference e1-f0.5 --ceiling-seeds 2 --out /work/runs/fid/out > fid.out 2> fid.err
echo "== fidelity end $(date -u +%H:%M:%S) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)"
