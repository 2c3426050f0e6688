"""``python -m bench`` runs every scenario and prints the table."""

from bench.run import main

main()
