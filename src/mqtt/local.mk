# mqtt module: telemetry channels (DESIGN section 7).
