"""``python -m chimein.cli ...`` is the ``chimein`` command."""

import sys

from chimein.cli.main import main

sys.exit(main())
