"""``python -m vmcp`` runs the command line (through the fast start, as the script does)."""

from vmcp.faststart import main

main()
