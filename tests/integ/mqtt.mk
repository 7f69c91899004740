# Integration suites of telemetry channels (real MQTT clients).
