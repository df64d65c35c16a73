"""gatewayd: an on-prem device gateway on one TCP port and one UDP port."""

__version__ = "0.1.0"
