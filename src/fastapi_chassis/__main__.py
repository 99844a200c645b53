"""`python -m fastapi_chassis` runs the CLI."""

from fastapi_chassis.cli import main

raise SystemExit(main())
