#!/usr/bin/env python3
"""power.py — how often each strategy of the seeded scheduler finds each
bug of tests/fuzz, over the same seeds (docs/fuzzing.md quotes its table).

    tests/fuzz/power.py [-n SEEDS] BUILDDIR LIB

BUILDDIR holds the test programs (atomicity, order, lockorder,
lostwakeup); LIB is libvthread.so.  For each program and strategy: the
share of seeds 1..SEEDS whose run fails, and the expected runs to the
first failure (1 / that share).  "mixed" is vthread-fuzz's default, which
alternates random and pct:3 seeds: the mean of those two columns.  PCT is given the schedule points of the
program's correct version as STEPS, as vthread-fuzz learns them.
"""
import os
import subprocess
import sys

PROGS = ['atomicity', 'order', 'lockorder', 'lostwakeup', 'stale']


def run(prog, sched, lib, extra=None):
    env = dict(os.environ, LD_PRELOAD=lib, VTHREAD_PROCS='1',
               VTHREAD_SCHED=sched, VTHREAD_DEBUG='sched')
    p = subprocess.run([prog], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return p.returncode, p.stdout.decode('utf-8', 'replace')


def points(prog, lib):
    _, out = run(prog, 'random:1', lib)
    for f in out.split():
        if f.startswith('points='):
            return int(f[7:])
    return 200


def main():
    args = sys.argv[1:]
    n = 200
    if args[:1] == ['-n']:
        n = int(args[1])
        args = args[2:]
    build, lib = args
    strategies = ['random', 'pct:2', 'pct:3']
    cols = strategies + ['mixed (random+pct:3)']
    print('%-12s %s' % ('program', ''.join('%-22s' % s for s in cols)))
    for name in PROGS:
        prog = os.path.join(build, name)
        k = points(prog + '-fixed', lib)
        cells, rates = [], {}
        for s in strategies:
            fails = 0
            for seed in range(1, n + 1):
                if s == 'random':
                    sched = 'random:%d' % seed
                else:
                    sched = 'pct:%d:%s:%d' % (seed, s.split(':')[1], k)
                rc, _ = run(prog, sched, lib)
                fails += rc != 0
            rates[s] = fails / n
        # vthread-fuzz's default alternates random and pct:3 seeds
        rates['mixed'] = (rates['random'] + rates['pct:3']) / 2
        for s in strategies + ['mixed']:
            p = rates[s]
            cells.append('%3d%% (%s runs)' % (
                round(100 * p), '%.1f' % (1 / p) if p else 'never'))
        print('%-12s %s' % (name, ''.join('%-22s' % c for c in cells)))
    print('(%d seeds each; points of the correct versions used as pct STEPS)'
          % n)


if __name__ == '__main__':
    main()
