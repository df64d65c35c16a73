"""History: telemetry, punches and communications in an SQLite projection of the journal."""
