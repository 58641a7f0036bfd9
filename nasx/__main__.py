"""`python -m nasx` = the `nasx` command."""

from .cli import main

main()
