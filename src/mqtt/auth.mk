# MQTT identity: mosquitto password and ACL files: sets MQTT_AUTH_SOURCES for src/mqtt/local.mk.
