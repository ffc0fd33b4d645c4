"""``python -m catalog_service``."""

import sys

from catalog_service.cli import main

sys.exit(main())
