"""`python -m app.cli ...`: the `kefu` command without its console script."""

from app.cli import main

main()
