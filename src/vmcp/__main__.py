"""``python -m vmcp`` runs the command line."""

from vmcp.cli import main

main()
