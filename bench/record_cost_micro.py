#!/usr/bin/python3
"""record_cost_micro.py: what writing one attempt record costs Redis inside a
script, for the record layouts considered for record_outcomes.lua.

Starts a private redis-server on a free 127.0.0.1 port (no persistence),
fills it with --fill keys that expire (a production Redis holds one attempt
list per event of the last HOOKQ_ATTEMPT_TTL: a bigger keyspace makes every
new key cost more), then calls each variant's script --reps times with 60
records of ~250 bytes, as record_outcomes.lua receives them (entry id, count,
"a", event id, record), in --rounds alternating rounds. Prints, per variant,
the median Redis CPU (INFO cpu) and EVALSHA time per record.

    /usr/bin/python3 bench/record_cost_micro.py [--fill 300000] [--reps 200] [--rounds 3]

Needs python3-redis (./run deps) and redis-server. A measurement, not a test.
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time

import redis

REC = ('{"endpoint_id":"ep_abcdefghijkl","attempt":1,"at_ms":1765000000000,'
       '"duration_ms":3,"status":204,"outcome":"delivered","error":"","response":""}' + 'x' * 100)
N = 60  # records per call: about the worker's batch
T = "local t = redis.call('TIME') local x = tostring(t[1] * 1000 + 259200000) "
VARIANTS = {
    # record_outcomes.lua before 2026-12-07
    'rpush+pexpire': "for i = 1, #ARGV, 5 do local k = KEYS[1] .. ARGV[i + 3] "
                     "redis.call('RPUSH', k, ARGV[i + 4]) redis.call('PEXPIRE', k, 259200000) end",
    # record_outcomes.lua now
    'rpush+pexpireat': T + "for i = 1, #ARGV, 5 do local k = KEYS[1] .. ARGV[i + 3] "
                       "redis.call('RPUSH', k, ARGV[i + 4]) redis.call('PEXPIREAT', k, x) end",
    # a string per event: one command for an event's first record
    'set pxat nx': T + "for i = 1, #ARGV, 5 do "
                   "redis.call('SET', KEYS[1] .. ARGV[i + 3], ARGV[i + 4], 'PXAT', x, 'NX') end",
    # one hash per batch (not per event): what dropping per-event keys would save
    'hset per batch': T + "local t = {} for i = 1, #ARGV, 5 do t[#t + 1] = ARGV[i + 3] "
                      "t[#t + 1] = ARGV[i + 4] end redis.call('HSET', KEYS[1], unpack(t)) "
                      "redis.call('PEXPIREAT', KEYS[1], x)",
    # the arguments and the loop alone
    'no write': "local n = 0 for i = 1, #ARGV, 5 do local k = KEYS[1] .. ARGV[i + 3] "
                "n = n + #ARGV[i + 4] end",
}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def cpu(r):
    i = r.info('cpu')
    return i['used_cpu_user'] + i['used_cpu_sys']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--fill', type=int, default=300000)
    ap.add_argument('--reps', type=int, default=200)
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix='hookq-micro.')
    srv = subprocess.Popen(['redis-server', '--bind', '127.0.0.1', '--port', str(port), '--save', '',
                            '--appendonly', 'no', '--dir', tmp],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        p = r.pipeline(transaction=False)
        for i in range(a.fill):
            p.set('fill:%d' % i, REC, px=259200000)
            if i % 5000 == 4999:
                p.execute()
        p.execute()
        shas = {k: r.script_load(v) for k, v in VARIANTS.items()}
        res = {k: [] for k in VARIANTS}
        for rnd in range(a.rounds):
            names = list(VARIANTS) if rnd % 2 == 0 else list(reversed(VARIANTS))
            for name in names:
                r.config_resetstat()
                c0 = cpu(r)
                for k in range(a.reps):
                    args = []
                    for i in range(N):
                        args += ['1700000000000-%d' % i, '3', 'a', 'e%d_%d_%d' % (rnd, k, i), REC]
                    key = 'p:%s:%d:%d:' % (name, rnd, k) if name == 'hset per batch' else 'p:%s:%d:' % (name, rnd)
                    r.evalsha(shas[name], 1, key, *args)
                c1 = cpu(r)
                ev = r.info('commandstats')['cmdstat_evalsha']['usec']
                res[name].append(((c1 - c0) * 1e6 / (a.reps * N), ev / (a.reps * N)))
        print('%d keys in the db, %d records of %d bytes per call, median of %d rounds'
              % (a.fill, N, len(REC), a.rounds))
        for name, v in res.items():
            print('%-16s redis CPU %5.2f us per record   EVALSHA %5.2f us per record'
                  % (name, statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)))
    finally:
        srv.terminate()
        srv.wait()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == '__main__':
    main()
