"""`python -m botkit` is the `botkit` command."""

import sys

from botkit.cli import main

sys.exit(main())
