"""Run the ``neuromfa`` CLI and SIGKILL the process right after its N-th stored result.

Used by the resume tests (``python tests/kill_driver.py N analyze ...``): the kill lands at an
exact point (after ``RunStore.put`` and the progress update, before the next task), which a
kill from outside cannot promise.  It wraps ``analyze_series``'s ``on_result`` hook, so the
library itself carries no test-only code.
"""
from __future__ import annotations

import os
import signal
import sys

import neuromfa_native.run.runner as runner


def _main() -> int:
    kill_after = int(sys.argv[1])
    original = runner.analyze_series

    def analyze_series(*args, **kwargs):
        user_hook = kwargs.get("on_result")
        n_done = 0

        def on_result(checkpoint, result):
            nonlocal n_done
            if user_hook is not None:
                user_hook(checkpoint, result)
            n_done += 1
            if n_done >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        kwargs["on_result"] = on_result
        return original(*args, **kwargs)

    runner.analyze_series = analyze_series  # the CLI imports it when the command runs
    from neuromfa_native.cli import main

    return main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(_main())
