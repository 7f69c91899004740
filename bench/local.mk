# bench
# bench/bench_channel.sh: two-agent channel throughput and idle RSS (needs a
# built chand and chanctl; `sh bench/bench_channel.sh [BUILD_DIR]`).
EXTRA_DIST += bench/bench_channel.sh
EXTRA_DIST += bench/bench_handshake.sh

# bench/bench_mqtt.sh: telemetry channels (MQTT over TLS) side by side with
# Mosquitto, and idle TLS clients (`sh bench/bench_mqtt.sh [BUILD_DIR]`).
# Its load client speaks MQTT with the project's pure codec over GnuTLS.
EXTRA_DIST += bench/bench_mqtt.sh
noinst_PROGRAMS += bench/bench_mqtt_client
bench_bench_mqtt_client_SOURCES = bench/bench_mqtt_client.c $(MQTT_CODEC_SOURCES)
bench_bench_mqtt_client_LDADD = src/common/libcommon.a $(GNUTLS_LIBS)

# bench/bench_bridge.sh: two sites, chand routes over a mutual-TLS channel
# side by side with a Mosquitto TLS bridge (`sh bench/bench_bridge.sh
# [BUILD_DIR]`); its client publishes at one broker and subscribes at the other.
EXTRA_DIST += bench/bench_bridge.sh bench/lib_mosq.sh
noinst_PROGRAMS += bench/bench_bridge_client
bench_bench_bridge_client_SOURCES = bench/bench_bridge_client.c $(MQTT_CODEC_SOURCES)
bench_bench_bridge_client_LDADD = src/common/libcommon.a $(GNUTLS_LIBS)

# bench/bench_tlsstream: a bare TLS 1.3 stream between two processes on
# loopback (GnuTLS only), the yardstick bench_channel.sh holds the 64 KiB
# nonpersistent channel rate against.
noinst_PROGRAMS += bench/bench_tlsstream
bench_bench_tlsstream_SOURCES = bench/bench_tlsstream.c
bench_bench_tlsstream_LDADD = $(GNUTLS_LIBS)
