"""`python -m tfopt` runs the `tfopt` command."""

from tfopt.cli import main

raise SystemExit(main())
