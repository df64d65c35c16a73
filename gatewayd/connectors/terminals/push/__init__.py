"""ZKTeco PUSH ("ADMS", iclock) attendance terminals: codec, service, state part and routes."""
