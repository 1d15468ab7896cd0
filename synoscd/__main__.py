import sys

from synoscd.cli.main import entry

sys.exit(entry())
