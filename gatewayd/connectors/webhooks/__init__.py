"""Webhooks: journal events POSTed to HTTP endpoints, in order, at least once, across restarts.
`spec` is what one webhook is, `state` the webhooks added at runtime, `delivery` the pure parts
(bodies, signatures, backoff), `worker` one endpoint's sender, `service` the set of them and their
operations, `routes` the API and the dashboard, `actions` /monitor/actions, `commands` the CLI."""
