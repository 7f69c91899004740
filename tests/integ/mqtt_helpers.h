/* Helpers for the telemetry channel suites: the seed PKIs
 * (tests/pki/mkseed.sh), an agent whose keystore holds a seed's broker
 * certificate, telemetry channels on free ports, real MQTT client commands
 * with timeouts, background subscribers, and `chanctl status --json` of a
 * telemetry channel and its clients.
 *
 * Functions named *_ok, and those that set something up, fail the current
 * Criterion test when a step fails; the others return what happened. */
#ifndef CHAND_TESTS_MQTT_HELPERS_H
#define CHAND_TESTS_MQTT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "chan_helpers.h"

/* The address of the seeds' broker (their 10.3.0.11), and so the CN of
 * the server certificates. */
#define MQTT_ADDR "127.0.0.1"
/* The keystore label of the broker's certificate. */
#define MQTT_LABEL "broker"

/* ---- the seed PKIs ---- */

/* Directory made by tests/pki/mkseed.sh once per test binary run (in the
 * runner, passed down in $MQTT_SEED_DIR), else on first use. */
const char *mqtt_seed_dir(void);
/* Path of a seed file ("seed001/ca.pem", "pw.txt"); one of 16 rotating
 * static buffers. */
const char *mqtt_seed(const char *file);

/* ---- the Python client (tests/integ/mqtt_client.py) ---- */

/* "PYTHON SCRIPT" ready to be followed by a command: $MQTT_PYTHON or
 * /usr/bin/python3 (Debian's python3-paho-mqtt lives there, whatever
 * python3 comes first on PATH). */
const char *mqtt_py(void);

/* ---- an agent serving telemetry channels ---- */

enum mqtt_seed_kind {
	/* seed 001: trusts seed001/ca.pem; broker = seed001/server.pem with
	 * its aes256-encrypted key. */
	MQTT_SEED001 = 1,
	/* seed 002: trusts only the root ca/ca.crt; broker =
	 * certs/server/server.crt (des3 key) with the server CA as its chain. */
	MQTT_SEED002 = 2,
};

struct mqtt_broker {
	struct chan_qm qm;
	enum mqtt_seed_kind seed;
	char chan[49];        /* the channel of the last mqtt_channel_start */
	int port;             /* its port */
	char cafile[600];     /* what clients pass as --cafile */
	char work[256];       /* a scratch directory for client files */
};

/* Makes the keystore (create --stash, trust the seed's CA, import the
 * broker's certificate with its encrypted key) and starts the agent. */
void mqtt_broker_start(struct mqtt_broker *b, const char *qmgr, enum mqtt_seed_kind seed);
/* The same with more lines for chand.conf (may be NULL). */
void mqtt_broker_start_conf(struct mqtt_broker *b, const char *qmgr, enum mqtt_seed_kind seed,
                            const char *extra_conf);
/* `define channel NAME --type mqtt --port P --address 127.0.0.1 --sslciph
 * ANY_TLS12_OR_HIGHER --certlabl broker ATTRS` (ATTRS must hold
 * --sslcauth) on a free port, `start channel NAME`, and waits until the
 * port accepts connections. Returns the port. */
int mqtt_channel_start(struct mqtt_broker *b, const char *name, const char *attrs);
/* kill -9 of the agent, restart on the same data, `start channel` (in case
 * it does not come back started by itself) and wait for the port. */
void mqtt_broker_kill9_restart(struct mqtt_broker *b);
/* Stops every background client, the agent, and removes the directories.
 * Aborts (so the suite fails even from a .fini) if the agent ended badly. */
void mqtt_broker_finish(struct mqtt_broker *b);

/* Whether a TCP connection to 127.0.0.1:port succeeds within timeout_ms. */
bool mqtt_wait_port(int port, int timeout_ms);
/* Writes text to <b->work>/name (mode 0600); returns the path (static
 * rotating buffer). */
const char *mqtt_write_file(struct mqtt_broker *b, const char *name, const char *text);

/* ---- client commands ---- */

/* "-h 127.0.0.1 -p PORT --cafile CA" for mosquitto_pub/sub (static
 * rotating buffer). */
const char *mqtt_mosq(struct mqtt_broker *b);
/* "--port PORT --cafile CA" for mqtt_client.py (static rotating buffer). */
const char *mqtt_pyconn(struct mqtt_broker *b);
/* Runs a shell command with a timeout (s); exit code as th_sh (-1 on
 * timeout); out and err malloc'd (may be NULL to discard). */
int mqtt_run(char **out, char **err, int timeout_s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same, failing the test unless it exits 0; returns stdout. */
char *mqtt_run_ok(int timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A client running in the background (its own process group, killed at
 * mqtt_bg_stop or mqtt_broker_finish), output in files. */
struct mqtt_bg {
	pid_t pid;
	int status;           /* exit code once reaped, -1 before */
	char out[600], err[600];
};

void mqtt_bg_start(struct mqtt_broker *b, struct mqtt_bg *bg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Its stdout (malloc'd, "" if none yet). */
char *mqtt_bg_output(struct mqtt_bg *bg);
/* Waits until its stdout contains needle; false on timeout. */
bool mqtt_bg_wait(struct mqtt_bg *bg, const char *needle, int timeout_ms);
/* Waits for its exit: exit code (128+signal), or -1 on timeout. */
int mqtt_bg_wait_exit(struct mqtt_bg *bg, int timeout_ms);
/* Kills its process group and reaps it (idempotent). */
void mqtt_bg_stop(struct mqtt_bg *bg);
/* Prints its stdout and stderr to stderr (after a failure). */
void mqtt_bg_dump(struct mqtt_bg *bg, const char *what);

/* Runs a publishing command every 500 ms until bg's stdout holds needle
 * (a subscriber whose SUBACK the test cannot see, or QoS 0); false on
 * timeout. */
bool mqtt_pub_until(struct mqtt_bg *bg, const char *needle, int timeout_ms, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Lines of text equal to line. */
int mqtt_count_lines(const char *text, const char *line);

/* ---- status and log ---- */

/* The record of channel name from `chanctl --json status NAME [--clients]`
 * (json_decref it), or NULL. */
json_t *mqtt_status(struct mqtt_broker *b, const char *name, bool clients);
/* The element of record's "clients" with that client_id (borrowed), or
 * NULL. */
json_t *mqtt_find_client(json_t *record, const char *client_id);
/* Waits until client_id is (present) or is not (!present) among the
 * channel's connected clients; true on success. */
bool mqtt_wait_client(struct mqtt_broker *b, const char *name, const char *client_id,
                      bool present, int timeout_ms);
/* Length of the agent's log now, to look only at what comes after. */
size_t mqtt_log_mark(struct mqtt_broker *b);
/* Waits until the log after mark contains needle; false on timeout. */
bool mqtt_wait_log_since(struct mqtt_broker *b, size_t mark, const char *needle, int timeout_ms);
/* The log after mark (malloc'd). */
char *mqtt_log_since(struct mqtt_broker *b, size_t mark);
/* Prints the channel's status and the agent's log tail (after a failure). */
void mqtt_dump(struct mqtt_broker *b);

#endif
