#!/usr/bin/python3
"""W5 side by side: this library's echo servers against the minimal C epoll server, same machine, same run.

Usage: run.py [--runs N] [--warm S] [--meas S] [--sizes 64,1024,102400] [--conns 1,100] [--out FILE.json]
Builds nothing: expects /tmp/w5/W5 (dotnet build -c Release bench/workloads/W5 -o /tmp/w5), /tmp/loadgen and
/tmp/echo_epoll (gcc -O2 from shared/peers/c). Server pinned to CPU 0, load generator to CPU 1 (as
shared/peers/harness.py), 127.0.0.1 only; every child runs under a timeout and each server exits by itself
after a bounded lifetime. Rounds are interleaved (every server once per round) and medians reported."""
import argparse, json, os, statistics, subprocess, time

TICK = os.sysconf('SC_CLK_TCK')

def cpu_s(pid):
    """User + system CPU seconds of a process (from /proc), or None."""
    try:
        f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except Exception:
        return None

PORT = 9123
SERVERS = {
    'c-epoll': ['/tmp/echo_epoll'],
    'aio-proto': ['/tmp/w5/W5', 'proto'],
    'aio-streams': ['/tmp/w5/W5', 'streams'],
}

def start(name, max_s):
    p = subprocess.Popen(['taskset', '-c', '0'] + SERVERS[name] + ([str(PORT)] if name == 'c-epoll' else [str(PORT)]) + [str(max_s)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if 'LISTENING' not in line:
        p.kill(); p.wait(); return None
    return p

def stop(p):
    if p.poll() is None:
        p.terminate()
        try: p.wait(timeout=5)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--warm', type=float, default=1)
    ap.add_argument('--meas', type=float, default=3)
    ap.add_argument('--sizes', default='64,1024,102400')
    ap.add_argument('--conns', default='1,100')
    ap.add_argument('--servers', default=','.join(SERVERS))
    ap.add_argument('--out', default='')
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(',')]; conns = [int(c) for c in a.conns.split(',')]
    results = {}
    for r in range(a.runs):
        for srv in a.servers.split(','):
            p = start(srv, int(len(sizes) * len(conns) * (a.warm + a.meas + 5) + 30))
            if p is None:
                print('server failed to start:', srv, flush=True); continue
            for s in sizes:
                for c in conns:
                    argv = ['taskset', '-c', '1', '/tmp/loadgen', str(PORT), str(c), str(s), str(a.warm), str(a.meas)]
                    try:
                        c0 = cpu_s(p.pid)
                        out = subprocess.run(argv, capture_output=True, text=True, timeout=a.warm + a.meas + 20).stdout
                        c1 = cpu_s(p.pid)
                        res = [json.loads(l[7:]) for l in out.splitlines() if l.startswith('RESULT ')]
                        res = res[0] if res else {'error': 'no result'}
                        if 'rps' in res and c0 is not None and c1 is not None and res['rps'] > 0:
                            # Server CPU per request over warm-up + measure (the loadgen runs its requests
                            # at about the same rate in both): robust to a busy machine, unlike rps.
                            total = res['rps'] * (a.warm + a.meas)
                            res['cpu_us_per_req'] = round((c1 - c0) * 1e6 / total, 2)
                    except subprocess.TimeoutExpired:
                        res = {'error': 'loadgen timeout'}
                    results.setdefault('%s|S=%d,C=%d' % (srv, s, c), []).append(res)
                    print('run%d %-12s S=%-6d C=%-3d %s' % (r, srv, s, c, json.dumps(res)), flush=True)
            stop(p)
            time.sleep(0.5)
    print()
    print('| cell | ' + ' | '.join(a.servers.split(',')) + ' | proto/C | streams/C |')
    print('|---|' + '---|' * (len(a.servers.split(',')) + 2))
    for s in sizes:
        for c in conns:
            med = {}
            for srv in a.servers.split(','):
                v = [x['rps'] for x in results.get('%s|S=%d,C=%d' % (srv, s, c), []) if 'rps' in x]
                med[srv] = statistics.median(v) if v else float('nan')
            row = ['%.0f' % med[x] for x in a.servers.split(',')]
            cb = med.get('c-epoll', float('nan'))
            print('| S=%d C=%d | %s | %.2f | %.2f |' % (s, c, ' | '.join(row), med.get('aio-proto', 0) / cb, med.get('aio-streams', 0) / cb))
    print()
    print('Server CPU per request (us, median; lower is better):')
    print('| cell | ' + ' | '.join(a.servers.split(',')) + ' | C/proto | C/streams |')
    print('|---|' + '---|' * (len(a.servers.split(',')) + 2))
    for s in sizes:
        for c in conns:
            med = {}
            for srv in a.servers.split(','):
                v = [x['cpu_us_per_req'] for x in results.get('%s|S=%d,C=%d' % (srv, s, c), []) if 'cpu_us_per_req' in x]
                med[srv] = statistics.median(v) if v else float('nan')
            cb = med.get('c-epoll', float('nan'))
            print('| S=%d C=%d | %s | %.2f | %.2f |' % (s, c, ' | '.join('%.2f' % med[x] for x in a.servers.split(',')),
                  cb / med.get('aio-proto', float('nan')), cb / med.get('aio-streams', float('nan'))))
    if a.out:
        json.dump(results, open(a.out, 'w'), indent=1)

if __name__ == '__main__':
    main()
