"""MQTT northbound: every event to a broker, store-and-forward from the journal, commands back down."""
