"""Sans-IO codecs: bytes in, typed messages out, and back. No trio, no quart, no sockets."""
