"""The command line: `gatewayd serve` and the operator commands, built from the ground floor's
commands and those each connector declares. Nothing outside this package imports it."""
