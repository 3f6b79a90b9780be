import sys

from quag.cli import main

sys.exit(main())
