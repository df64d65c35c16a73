"""What forwarders to other systems (MQTT, webhooks) send: journal records as northbound events."""
