"""Run one measured job in a fresh interpreter and report wall time and peak RSS (for benches)."""
import json
import os
import subprocess
import sys


def run_job(module: str, func: str, *args, threads=None) -> dict:
    """Runs bench.<module>.<func>(*args) in a subprocess; returns its dict + peak RSS in MiB."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    # Peak RSS is VmHWM of the child's own address space.  Not getrusage's ru_maxrss: Linux
    # carries that across fork and exec, so it would report the parent's RSS (e.g. after the
    # parent generated a checkpoint) whenever that is larger than the child's own peak.
    code = ("import json, sys; sys.path.insert(0, %r); import %s as m; "
            "out = m.%s(*json.loads(sys.argv[1])); "
            "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]; "
            "out['peak_rss_mib'] = int(hwm.split()[1]) / 1024; "
            "print('@@' + json.dumps(out))") % (os.path.dirname(os.path.abspath(__file__)), module, func)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{module}.{func}{args} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")][-1]
    return json.loads(line[2:])


def machine() -> dict:
    import platform
    from datetime import datetime, timezone
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return dict(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), cpu=cpu, cores=os.cpu_count(),
                python=platform.python_version(), rss_unit="MiB")


def save(path: str, rows, meta) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as fh:
        json.dump(dict(meta=meta, rows=rows), fh, indent=2)
