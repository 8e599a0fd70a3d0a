"""Entry point the Pulumi CLI runs for `--policy-pack policy` (see platform_pack.py)."""

from platform_pack import serve

serve()
