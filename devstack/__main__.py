import sys

from devstack.cli import main
from devstack.console import check_cwd
from devstack.errors import DevstackError

try:
    check_cwd()
except DevstackError as exc:
    sys.stderr.write(f"devstack: {exc.message}\n")
    sys.exit(exc.exit_code)
main()
