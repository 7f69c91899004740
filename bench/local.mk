# bench
# bench/bench_channel.sh: two-agent channel throughput and idle RSS (needs a
# built chand and chanctl; `sh bench/bench_channel.sh [BUILD_DIR]`).
EXTRA_DIST += bench/bench_channel.sh
EXTRA_DIST += bench/bench_handshake.sh
