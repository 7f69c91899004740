# MQTT codec (pure, fuzzed): sets MQTT_CODEC_SOURCES for src/mqtt/local.mk.
