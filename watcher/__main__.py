"""Entry point for ``python -m watcher``."""

from watcher.launch import main

raise SystemExit(main())
