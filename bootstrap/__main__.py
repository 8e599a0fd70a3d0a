"""Entry point of the bootstrap program (`cd bootstrap && pulumi up`); see platform_bootstrap.py."""

from platform_bootstrap import main

main()
