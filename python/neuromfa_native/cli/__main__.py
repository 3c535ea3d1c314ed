"""``python -m neuromfa_native.cli``: the ``neuromfa`` command."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
