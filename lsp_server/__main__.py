"""`python -m lsp_server` runs the stagecoder command line."""

import sys

from lsp_server.cli import main

sys.exit(main())
