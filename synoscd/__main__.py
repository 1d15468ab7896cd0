import sys

from synoscd.cli.main import main

sys.exit(main())
