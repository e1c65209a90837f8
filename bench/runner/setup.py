"""Prerequisites and builds: checks (and with apt-get installs) what the peers need, copies the shared
peer suite to a writable build directory and builds it, builds this library's workload programs."""
import glob, os, shutil, subprocess, sys

from common import REPO, BENCH, log

PEERS_BUILD = os.path.join(BENCH, '.peers')           # gitignored
PEERS_DIR = os.path.join(PEERS_BUILD, 'peers')        # the copy that is built and run
WORKLOADS = os.path.join(BENCH, 'workloads')


def default_peers_source():
    return os.environ.get('ASYNCIO_PEERS') or os.path.normpath(os.path.join(REPO, '..', 'shared', 'peers'))


def _ok(argv):
    try:
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _cargo():
    return shutil.which('cargo') or next((p for p in [os.path.expanduser('~/.cargo/bin/cargo')] if os.path.exists(p)), None)


# name -> (check, apt package, what needs it)
PREREQS = [
    ('dotnet', lambda: _ok(['dotnet', '--version']), None, 'everything (.NET 10 SDK)'),
    ('/usr/bin/time', lambda: os.path.exists('/usr/bin/time'), 'time', 'peak RSS of every run'),
    ('taskset', lambda: shutil.which('taskset') is not None, 'util-linux', 'W5 core pinning'),
    ('gcc', lambda: shutil.which('gcc') is not None, 'gcc', 'W5 (C epoll server and the shared load generator)'),
    ('node', lambda: shutil.which('node') is not None, 'nodejs', 'peer node'),
    ('cargo', lambda: _cargo() is not None, 'cargo', 'peer tokio-ct'),
    ('librust-tokio-dev', lambda: bool(glob.glob('/usr/share/cargo/registry/tokio-[0-9]*')), 'librust-tokio-dev', 'peer tokio-ct (offline build)'),
    ('python3-uvloop', lambda: _ok(['/usr/bin/python3', '-c', 'import uvloop']), 'python3-uvloop', 'peer uvloop'),
]


def check_prereqs(install=True):
    """Returns the names still missing after trying to install them; prints what it did."""
    missing = [p for p in PREREQS if not p[1]()]
    if not missing:
        log('prerequisites: all present')
        return []
    log('prerequisites missing: ' + ', '.join(m[0] for m in missing))
    pkgs = [m[2] for m in missing if m[2]]
    if install and pkgs and shutil.which('apt-get') and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        log('  apt-get update && apt-get install -y ' + ' '.join(pkgs))
        subprocess.run(['apt-get', 'update', '-q'], env=env, stdout=subprocess.DEVNULL)
        for pkg in pkgs:   # one at a time, so that one missing package does not stop the others
            r = subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', pkg], env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                log('  apt-get install %s failed: %s' % (pkg, r.stderr.strip().splitlines()[-1:] or ''))
        missing = [p for p in PREREQS if not p[1]()]
    elif pkgs:
        log('  not installing (%s): run  apt-get install %s' % (
            'disabled by --no-install' if not install else 'needs root and apt-get', ' '.join(pkgs)))
    for m in missing:
        log('  STILL MISSING: %s (needed for %s)%s' % (m[0], m[3], '; apt-get install ' + m[2] if m[2] else ''))
    if any(m[0] == 'dotnet' for m in missing):
        sys.exit('bench/run: the .NET 10 SDK is required')
    return [m[0] for m in missing]


def sync_peers(source):
    """Copies the read-only shared peer suite into bench/.peers/peers (keeping timestamps, so that
    incremental builds stay incremental) and isolates it from this repository's Directory.Build.props."""
    if not os.path.isfile(os.path.join(source, 'harness.py')):
        sys.exit('bench/run: peer suite not found at %s (set ASYNCIO_PEERS or --peers-src)' % source)
    os.makedirs(PEERS_DIR, exist_ok=True)
    skip = {'results', 'out', 'bin', 'obj', 'target'}
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d not in skip]
        dst = os.path.join(PEERS_DIR, os.path.relpath(root, source))
        os.makedirs(dst, exist_ok=True)
        for f in files:
            s, d = os.path.join(root, f), os.path.join(dst, f)
            if not os.path.exists(d) or os.path.getmtime(d) != os.path.getmtime(s) or os.path.getsize(d) != os.path.getsize(s):
                shutil.copy2(s, d)
    # MSBuild looks upwards for Directory.Build.props: stop it here, so the peer builds as it does in shared/.
    for name in ('Directory.Build.props', 'Directory.Build.targets'):
        with open(os.path.join(PEERS_BUILD, name), 'w') as f:
            f.write('<Project>\n  <!-- Keeps the peer suite (copied here by bench/run) out of this repository\'s build settings. -->\n</Project>\n')
    return PEERS_DIR


def build_peers():
    env = dict(os.environ)
    cargo = _cargo()
    if cargo:
        env['PATH'] = os.path.dirname(cargo) + os.pathsep + env.get('PATH', '')
    log('building the peers (%s/build.sh)' % os.path.relpath(PEERS_DIR, REPO))
    r = subprocess.run(['bash', os.path.join(PEERS_DIR, 'build.sh')], capture_output=True, text=True, env=env, timeout=1800)
    skipped = [l.strip() for l in r.stdout.splitlines() if l.startswith('skipped:')]
    for l in skipped:
        log('  ' + l)
    if 'build done' not in r.stdout:
        log('  peer build did not finish: ' + (r.stderr or r.stdout)[-800:])


def dotnet_build(project):
    r = subprocess.run(['dotnet', 'build', project, '-c', 'Release', '-nologo', '-v', 'q', '-clp:ErrorsOnly'],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        log('  dotnet build %s FAILED:\n%s' % (os.path.relpath(project, REPO), (r.stdout + r.stderr)[-2000:]))
        return False
    return True


def release_exe(project_dir):
    """The apphost of an exe project's Release build (named after its *.runtimeconfig.json)."""
    for cfg in sorted(glob.glob(os.path.join(project_dir, 'bin', 'Release', 'net*', '*.runtimeconfig.json'))):
        exe = cfg[:-len('.runtimeconfig.json')]
        if os.path.exists(exe):
            return exe
    return None


def build_ours(notes):
    """Builds this library's programs; returns {'workloads', 'w3', 'w5', 'seed', 'charts'} -> exe or None."""
    log('building this library\'s programs (Release)')
    exes = {}
    for key, rel in (('workloads', 'workloads/Workloads'), ('charts', 'Charts'), ('seed', '../samples/Seed')):
        d = os.path.normpath(os.path.join(BENCH, rel))
        exes[key] = release_exe(d) if dotnet_build(d) else None
    for key in ('W3', 'W5'):
        d = os.path.join(WORKLOADS, key)
        projects = glob.glob(os.path.join(d, '*.csproj'))
        if not projects:
            exes[key.lower()] = None
            notes.append('%s: bench/workloads/%s does not exist yet, so this library is not measured on %s%s.' % (
                key, key, key, '' if key == 'W3' else ' and W5 is skipped unless --only names it'))
            continue
        exes[key.lower()] = release_exe(d) if dotnet_build(projects[0]) else None
        if exes[key.lower()] is None:
            notes.append('%s: bench/workloads/%s did not build; this library is not measured on %s.' % (key, key, key))
    for k, v in exes.items():
        log('  %-9s %s' % (k, os.path.relpath(v, REPO) if v else '-'))
    return exes
