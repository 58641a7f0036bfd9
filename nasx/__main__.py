"""`python -m nasx` = the `nasx` command."""

from .cli.app import main

main()
