"""``python -m server``: the ``p2p`` command, for where its script is not on the PATH."""

import sys

from server.cli import main

sys.exit(main())
