"""bench/run: builds everything in Release, runs the workloads of DESIGN.md section 6 on this library and
on every peer of ../shared/peers, interleaved, several runs per cell, and writes BENCHMARKS.md with tables
and charts. See BENCHMARKS.md ("Reproduce") for the options and the method."""
import argparse, json, os, shlex, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BENCH, REPO, log, elapsed          # noqa: E402
import setup, suite, report                            # noqa: E402

ALL = ['W1', 'W2', 'W3', 'W4', 'W5']


def parse(argv):
    ap = argparse.ArgumentParser(prog='bench/run', description=__doc__)
    ap.add_argument('--quick', action='store_true', help='1 run per cell, smaller sizes, short W5 cells: under 5 minutes once built')
    ap.add_argument('--runs', type=int, help='runs per cell (default 3; 1 with --quick)')
    ap.add_argument('--only', help='comma-separated subset of W1,W2,W3,W4,W5 (and "micro")')
    ap.add_argument('--peers', help='comma-separated peers for W1-W4 (default: all): ' + 'asyncio,uvloop,node,dotnet-tp,dotnet-asyncctx,tokio-ct'
                    + '; W5 servers are chosen by prefix too (asyncio -> asyncio-streams, asyncio-proto); "none" for only this library')
    ap.add_argument('--sizes', help='W5 message sizes (default 1024,64,102400; 1024 with --quick)')
    ap.add_argument('--w5-idle-spin-us', type=float, metavar='N',
                    help='W5: also run our two servers with LoopOptions.IdleSpin fixed at N microseconds (0: never spin, as asyncio; the targets stay the default servers, whose spin is adaptive)')
    ap.add_argument('--micro', action='store_true', help='also run the BenchmarkDotNet micro-benchmarks (their columns go into the report)')
    ap.add_argument('--out', help='report path (default: BENCHMARKS.md for a complete run, bench/results/<stamp>/BENCHMARKS.md otherwise)')
    ap.add_argument('--no-build', action='store_true', help='use the programs already built')
    ap.add_argument('--no-install', action='store_true', help='only check prerequisites, never apt-get install')
    ap.add_argument('--peers-src', default=setup.default_peers_source(), help='the shared peer suite (default ../shared/peers)')
    ap.add_argument('--report', metavar='RESULTS.json', help='only regenerate the report from a saved results file')
    a = ap.parse_args(argv)
    a.runs = a.runs or (1 if a.quick else 3)
    if a.runs < 1:
        ap.error('--runs must be at least 1')
    if a.w5_idle_spin_us is not None and not 0 <= a.w5_idle_spin_us < 1e6:
        ap.error('--w5-idle-spin-us must be at least 0 and under 1,000,000 (LoopOptions.IdleSpin is under a second)')
    sel = [s.strip() for s in (a.only or ','.join(ALL)).split(',') if s.strip()]
    bad = [s for s in sel if s.upper() not in ALL and s.lower() != 'micro']
    if bad:
        ap.error('unknown workload(s) %s: choose from %s, micro' % (','.join(bad), ','.join(ALL)))
    a.workloads = [s.lower() for s in sel if s.upper() in ALL]
    a.micro_only = 'micro' in [s.lower() for s in sel]
    a.complete = not (a.quick or a.only or a.peers or a.sizes or a.runs < 3)
    return a


def select_peers(h, have, spec):
    names = list(h.PEERS)
    servers = list(h.SERVERS)
    if spec:
        want = [s.strip() for s in spec.split(',') if s.strip()]
        unknown = [w for w in want if w != 'none' and w not in names and not any(s.startswith(w) for s in servers)]
        if unknown:
            sys.exit('bench/run: unknown peer(s) %s; peers: %s; servers: %s' % (','.join(unknown), ','.join(names), ','.join(servers)))
        names = [n for n in names if n in want]
        servers = [s for s in servers if any(s == w or s.startswith(w + '-') for w in want)]
    peers = [n for n in names if have.get(n)]
    base = {'asyncio-streams': 'asyncio', 'asyncio-proto': 'asyncio', 'uvloop-streams': 'uvloop', 'uvloop-proto': 'uvloop',
            'node': 'node', 'dotnet-tp': 'dotnet-tp', 'tokio-ct': 'tokio-ct'}
    servers = [s for s in servers if have.get(base.get(s, s), True) and (s != 'c-epoll' or os.path.exists(h.CE))]
    return peers, servers


def main(argv):
    a = parse(argv)
    command = 'bench/run' + ''.join(' ' + shlex.quote(x) for x in argv)
    if a.report:
        results = json.load(open(a.report))
        out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.report)), 'BENCHMARKS.md')
        report.write(results, out, charts_exe=setup.release_exe(os.path.join(BENCH, 'Charts')))
        return 0
    started = time.strftime('%Y-%m-%d %H:%M:%S %Z')
    stamp = time.strftime('%Y%m%d-%H%M%S')
    run_dir = os.path.join(BENCH, 'results', stamp)
    os.makedirs(run_dir, exist_ok=True)
    out = a.out or (os.path.join(REPO, 'BENCHMARKS.md') if a.complete else os.path.join(run_dir, 'BENCHMARKS.md'))
    log('bench/run %s: results in %s, report %s' % (stamp, os.path.relpath(run_dir, REPO), os.path.relpath(out, REPO)))

    missing = setup.check_prereqs(install=not a.no_install)
    notes = []
    setup.sync_peers(a.peers_src)
    if not a.no_build:
        setup.build_peers()
    exes = setup.build_ours(notes) if not a.no_build else {
        'workloads': setup.release_exe(os.path.join(BENCH, 'workloads', 'Workloads')),
        'charts': setup.release_exe(os.path.join(BENCH, 'Charts')),
        'seed': setup.release_exe(os.path.join(REPO, 'samples', 'Seed')),
        'w3': setup.release_exe(os.path.join(BENCH, 'workloads', 'W3')),
        'w5': setup.release_exe(os.path.join(BENCH, 'workloads', 'W5')),
    }
    h = suite.load_harness(setup.PEERS_DIR)
    have = suite.available_peers(h, missing)
    for p, ok in have.items():
        if not ok:
            notes.append('peer %s is not measured: its program is missing on this machine (see the prerequisites above).' % p)
    peers, servers = select_peers(h, have, a.peers)

    results = {'_versions': h.versions(), '_args': {'command': command, 'runs': a.runs, 'quick': a.quick, 'complete': a.complete},
               '_started': started, '_load_start': os.getloadavg(), '_notes': notes, '_missing': missing,
               '_ours': ours_versions(exes), '_peers': peers, '_servers': servers}
    path = os.path.join(run_dir, 'results.json')

    def save():
        with open(path, 'w') as f:
            json.dump(results, f, indent=1)
    save()
    log('peers: %s; W5 servers: %s' % (', '.join(peers) or '-', ', '.join(servers) or '-'))

    macro = [w for w in a.workloads if w != 'w5']
    if macro:
        suite.run_macro(h, results, exes, macro, peers, a.runs, a.quick, save)
    if 'w5' in a.workloads:
        explicit = a.only is not None and 'w5' in [s.lower() for s in a.only.split(',')]
        if exes.get('w5') or explicit:
            sizes = [int(s) for s in a.sizes.split(',')] if a.sizes else None
            suite.run_w5(h, results, exes, servers, a.runs, a.quick, sizes, a.w5_idle_spin_us)
        else:
            log('== W5 skipped: bench/workloads/W5 does not exist yet (name W5 in --only to measure the peers alone)')
        save()
    if a.micro or a.micro_only or (a.complete and not a.only):
        suite.run_micro(results, a.quick, a.micro or a.micro_only, run_dir)
        save()
    results['_finished'] = time.strftime('%Y-%m-%d %H:%M:%S %Z')
    results['_duration'] = elapsed()
    results['_load_end'] = os.getloadavg()
    save()
    log('results: ' + os.path.relpath(path, REPO))
    report.write(results, out, charts_exe=exes.get('charts'))
    log('done in %s' % elapsed())
    return 0


def ours_versions(exes):
    def sh(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=30, cwd=REPO).stdout.strip()
        except Exception as e:   # a report without a version beats no report
            return str(e)
    return {'commit': sh('git rev-parse --short HEAD') + (' (with uncommitted changes)' if sh('git status --porcelain -- src bench') else ''),
            'w3': bool(exes.get('w3')), 'w5': bool(exes.get('w5'))}


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
