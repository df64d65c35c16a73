"""LoRa Basics Station gateways (the LNS protocol over WebSocket): codec, router_config, service, routes."""
