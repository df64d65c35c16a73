"""Alerts: offline devices, silent gateways, offline terminals, a filling disk, skewed terminal
clocks. `engine` decides (pure), `state` applies the alert records, `service` checks periodically
and journals; `routes` serves the API and the dashboard page; `actions` puts them on
/monitor/actions; `commands` is `gatewayd alert`."""
