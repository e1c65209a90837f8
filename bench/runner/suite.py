"""The measurements: W1-W4 as whole processes, interleaved across contenders run by run; W5 through the
shared harness's server/load-generator loop; the Seed process; the micro-benchmarks.

The peer programs, their command lines, the single-run wrapper (`/usr/bin/time` for peak RSS, a timeout,
the RESULT line) and the W5 loop are the shared harness's own (bench/.peers/peers/harness.py, imported),
so that every contender is measured by the same code."""
import csv, glob, importlib.util, json, os, subprocess, tempfile, time

from common import BENCH, REPO, log, elapsed, stats

OURS = 'ours'                      # this library's W1-W4 column
OURS_SERVERS = ('ours-proto', 'ours-streams')


def load_harness(peers_dir):
    spec = importlib.util.spec_from_file_location('harness', os.path.join(peers_dir, 'harness.py'))
    h = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(h)
    return h


# Workload matrix: (cells of a full run, cells of --quick); a cell is N.
MATRIX = {
    'w1': ([2, 10000, 100000, 1000000], [2, 10000, 100000]),
    'w2': ([1000000], [100000]),
    'w3': ([1000000], [100000]),
    'w4': ([100000, 10000, 1000], [10000, 1000]),
}
TIMEOUT = 300   # seconds per process, as in the harness


def available_peers(h, missing):
    """The harness's peers whose programs exist on this machine."""
    have = {}
    for name in h.PEERS:
        if name in ('asyncio',):
            ok = os.path.exists(h.PY)
        elif name == 'uvloop':
            ok = 'python3-uvloop' not in missing
        elif name == 'node':
            ok = 'node' not in missing
        elif name.startswith('dotnet'):
            ok = os.path.exists(h.DN)
        elif name == 'tokio-ct':
            ok = os.path.exists(h.TK)
        else:
            ok = True
        have[name] = ok
    return have


def contenders(h, exes, workload, peers):
    """(name, argv-maker) for each contender of a W1-W4 workload, ours first."""
    out = []
    if workload in ('w1', 'w2', 'w4') and exes.get('workloads'):
        out.append((OURS, lambda w, n, exe=exes['workloads']: [exe, w, str(n)]))      # Workloads wN N
    elif workload == 'w3' and exes.get('w3'):
        out.append((OURS, lambda w, n, exe=exes['w3']: [exe, str(n)]))                # W3 N
    for p in peers:
        if h.PEERS[p](workload, 1) is not None:
            out.append((p, h.PEERS[p]))
    return out


class Progress:
    def __init__(self, total):
        self.total, self.done, self.t0 = total, 0, time.monotonic()

    def step(self, text):
        self.done += 1
        spent = time.monotonic() - self.t0
        left = spent / self.done * (self.total - self.done)
        log('[%3d/%d %s, ~%d:%02d left] %s' % (self.done, self.total, elapsed(), left // 60, left % 60, text))


def brief(r):
    if 'error' in r:
        return 'ERROR ' + r['error'][:200]
    keys = [('wall_s', '%.3fs'), ('rate', '%.0f/s'), ('p50_ms', 'p50=%.2fms'), ('p99_ms', 'p99=%.2fms'),
            ('min_ms', 'min=%.3fms'), ('proc_maxrss_mb', 'rss=%.0fMB')]
    return ' '.join(f % r[k] for k, f in keys if k in r)


def run_macro(h, results, exes, workloads, peers, runs, quick, save):
    """W1-W4: for each cell, `runs` rounds; in each round every contender runs once, in an order that
    rotates from round to round, so that drift of the machine hits every contender alike."""
    plan = []
    for w in workloads:
        if w not in MATRIX:
            continue
        cs = contenders(h, exes, w, peers)
        for n in MATRIX[w][1 if quick else 0]:
            plan.append((w, n, cs))
    total = sum(len(cs) for _, _, cs in plan) * runs + (runs if 'w1' in workloads and exes.get('seed') else 0)
    prog = Progress(total)
    for w, n, cs in plan:
        log('== %s N=%d: %s' % (w.upper(), n, ', '.join(c for c, _ in cs)))
        failed = set()
        for r in range(runs):
            k = r % len(cs)
            for name, argv in cs[k:] + cs[:k]:
                key = '%s|%s|N=%d' % (w, name, n)
                if name in failed:
                    prog.step('%s N=%d run %d/%d %-16s skipped after an error' % (w.upper(), n, r + 1, runs, name))
                    continue
                res = h.run_once(argv(w, n), TIMEOUT)
                results.setdefault(key, []).append(res)
                if 'error' in res:
                    failed.add(name)
                prog.step('%s N=%d run %d/%d %-16s %s' % (w.upper(), n, r + 1, runs, name, brief(res)))
        save()
        if w == 'w1' and n == MATRIX['w1'][1 if quick else 0][-1] and exes.get('seed'):
            run_seed(results, exes['seed'], runs, prog)
            save()


SEED_N = 1000000


def run_seed(results, exe, runs, prog):
    """The issue's whole-process target: `Seed --n 1000000 --mode async --quiet` (start-up included)."""
    argv = [exe, '--n', str(SEED_N), '--mode', 'async', '--quiet']
    key = 'seed|%s|N=%d' % (OURS, SEED_N)
    for r in range(runs):
        tf = tempfile.NamedTemporaryFile(delete=False)
        tf.close()
        try:
            p = subprocess.run(['/usr/bin/time', '-f', '%e %M', '-o', tf.name] + argv, capture_output=True, text=True, timeout=TIMEOUT)
            e, m = open(tf.name).read().split()[-2:]
            res = {'proc_wall_s': float(e), 'proc_maxrss_mb': int(m) / 1024.0, 'stdout': p.stdout.strip()[-80:]}
            if p.returncode != 0:
                res = {'error': 'rc=%d %s' % (p.returncode, p.stderr[-300:])}
        except (subprocess.TimeoutExpired, ValueError) as ex:
            res = {'error': str(ex)[:200]}
        finally:
            os.unlink(tf.name)
        results.setdefault(key, []).append(res)
        prog.step('Seed --n %d --mode async --quiet run %d/%d: %s' % (
            SEED_N, r + 1, runs, 'ERROR ' + res['error'] if 'error' in res else
            'process %.2fs rss=%.0fMB (%s)' % (res['proc_wall_s'], res['proc_maxrss_mb'], res['stdout'])))


W5_SIZES_FULL, W5_SIZES_QUICK = [1024, 64, 102400], [1024]


def run_w5(h, results, exes, servers, runs, quick, sizes=None, idle_spin_us=None):
    """W5 with the harness's own loop: every server pinned to core 0, the shared C loadgen on core 1.
    With idle_spin_us (0 included), two more servers of ours run with LoopOptions.IdleSpin fixed at that value, beside the
    default ones (whose spin is adaptive)."""
    if exes.get('w5'):
        ours = list(OURS_SERVERS)
        h.SERVERS['ours-proto'] = [exes['w5'], 'proto']        # W5 proto|streams PORT MAX_SECONDS
        h.SERVERS['ours-streams'] = [exes['w5'], 'streams']
        if idle_spin_us is not None:
            spin = ['--idle-spin-us', '%g' % idle_spin_us]
            h.SERVERS['ours-proto-spin'] = [exes['w5']] + spin + ['proto']
            h.SERVERS['ours-streams-spin'] = [exes['w5']] + spin + ['streams']
            ours += ['ours-proto-spin', 'ours-streams-spin']
            results.setdefault('_notes', []).append(
                'W5: the servers marked "IdleSpin set" are ours with `LoopOptions.IdleSpin` = %g µs (`bench/run --w5-idle-spin-us %g`): %s '
                'The default servers\' spin is adaptive (`IdleSpin` = null): up to 50 µs, only after idle waits that ended within 250 µs. '
                'The targets are the default servers\'.' % (idle_spin_us, idle_spin_us,
                'the loop never spins and blocks at once, as asyncio, uvloop and Tokio do.' if idle_spin_us == 0 else
                'before every blocking wait the loop polls without blocking for that long.'))
        servers = ours + servers
    sizes = sizes or (W5_SIZES_QUICK if quick else W5_SIZES_FULL)
    log('== W5 TCP echo: servers %s; sizes %s; C=1,100' % (', '.join(servers), sizes))
    h.bench_w5(results, servers, sizes, [1, 100], runs, 0.5 if quick else 1, 1 if quick else 5)


# ---- micro-benchmarks ----

MICRO_DIR = os.path.join(BENCH, 'Asyncio.Benchmarks')


def run_micro(results, quick, bdn, out_dir):
    """The exact allocation probe (always) and, with --micro, the BenchmarkDotNet suite."""
    from setup import dotnet_build, release_exe
    if not dotnet_build(MICRO_DIR):
        results['_micro'] = {'error': 'Asyncio.Benchmarks did not build'}
        return
    exe = release_exe(MICRO_DIR)
    micro = {}
    log('== allocation probe (Asyncio.Benchmarks --alloc)')
    r = subprocess.run([exe, '--alloc'], capture_output=True, text=True, timeout=600, cwd=MICRO_DIR)
    rows = [l.split('\t') for l in r.stdout.splitlines() if '\t' in l]
    micro['alloc'] = [dict(zip(rows[0], row)) for row in rows[1:]] if rows else []
    for a in micro['alloc']:
        log('  %-40s %6s B/op  %s' % (a['benchmark'], a['bytes_per_op'], a['types']))
    if bdn:
        art = os.path.join(out_dir, 'bdn')
        argv = [exe, '--filter', '*', '--inProcess', '--artifacts', art, '--exporters', 'csv']
        if quick:
            argv += ['--job', 'short']
        log('== BenchmarkDotNet: ' + ' '.join(argv[1:]))
        p = subprocess.run(argv, cwd=MICRO_DIR, capture_output=True, text=True, timeout=3600)
        micro['bdn'] = []
        for f in sorted(glob.glob(os.path.join(art, 'results', '*-report.csv'))):
            cls = os.path.basename(f).split('-report')[0].split('.')[-1]
            with open(f, newline='') as fh:
                for row in csv.DictReader(fh):
                    micro['bdn'].append({'benchmark': '%s.%s' % (cls, row['Method']), 'mean': row.get('Mean', ''),
                                         'error': row.get('Error', ''), 'stddev': row.get('StdDev', ''),
                                         'allocated': row.get('Allocated', ''), 'gen0': row.get('Gen0', '')})
        if not micro['bdn']:
            micro['bdn_error'] = p.stdout[-1500:] + p.stderr[-500:]
        for b in micro['bdn']:
            log('  %-40s %12s  %8s' % (b['benchmark'], b['mean'], b['allocated']))
        micro['bdn_job'] = 'ShortRun' if quick else 'default job'
    results['_micro'] = micro
