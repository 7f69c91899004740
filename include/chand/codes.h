/* The catalogue of stable event and error codes.  The code (CHDnnnn) and
 * its meaning never change once released: operators grep logs and
 * scripts match status fields on them.  `chanctl explain CODE` prints
 * the explanation and action.
 *
 * Ranges: 1xxx agent and config, 2xxx queues and messages, 3xxx keystore,
 * 4xxx TLS and identity, 5xxx channel protocol and state, 6xxx admin. */
#ifndef CHAND_CODES_H
#define CHAND_CODES_H

#include <stdarg.h>
#include <stddef.h>

/*  X(ID, "CHDnnnn", "short text", "what it means and what to do") */
#define CHD_CODES(X) \
	X(AGENT_START,      "CHD1001", "queue manager started", "The agent opened its database and listeners and is serving.") \
	X(AGENT_STOP,       "CHD1002", "queue manager stopped", "The agent ended cleanly after SIGTERM or SIGINT.") \
	X(CONFIG_ERROR,     "CHD1003", "configuration error", "The configuration file is invalid; the message names the file and line. Fix it and run chand --check-config.") \
	X(AGENT_LOCKED,     "CHD1004", "data directory in use", "Another chand holds the lock on this data directory. Stop it first, or point this one at another data_dir.") \
	X(DB_ERROR,         "CHD1005", "database error", "SQLite reported an error. Check disk space and permissions of data_dir; the message gives SQLite's reason.") \
	X(DB_MIGRATED,      "CHD1006", "database schema migrated", "The database was upgraded to the schema of this version on start.") \
	X(LISTEN_FAILED,    "CHD1007", "cannot listen", "A listener could not bind its address and port. Check that no other process uses the port.") \
	X(ROOT_REFUSED,     "CHD1008", "refusing to run as root", "chand does not run as root. Start it as the service user, or set user = \"chand\" in the configuration so it drops privileges to that user (allow_root = true is an escape hatch for containers and test rigs, not recommended).") \
	X(DISK_FULL,        "CHD1009", "disk full", "The file system of data_dir is full. The operation was refused and nothing was lost; free space.") \
	X(AGENT_SIGNAL,     "CHD1010", "stopping on signal", "The agent received SIGTERM or SIGINT and is stopping: running channels end, then it logs CHD1002. Nothing to do unless the stop was not intended.") \
	X(LOG_REOPENED,     "CHD1011", "log file reopened", "The agent received SIGHUP and reopened its log file, as log rotation expects. Nothing to do.") \
	X(LOG_FAILED,       "CHD1012", "cannot open the log file", "The log file could not be opened (on start, detach or SIGHUP); the message gives the reason. Check log.file, its directory and permissions; until fixed, lines go only to the other log destinations.") \
	X(SYS_RESOURCE,     "CHD1013", "system resource unavailable", "A system call the agent needs failed (thread creation, eventfd, poll, memory); the message names it and gives the reason. Usually a resource limit: check ulimit -u and -n, memory, and the number of channels and admin clients.") \
	X(MODULE_FAILED,    "CHD1014", "agent module failed to start", "A part of the agent (channels, admin socket, metrics, expiry checks) could not start, so the agent stops. The lines before this one give the cause.") \
	X(STOP_SLOW,        "CHD1015", "shutdown not complete in time", "Some threads (a module, channel connections or admin clients) did not end within the stop bound, so the agent ends without them. Committed messages are safe; if it recurs, look for a blocked peer or disk.") \
	X(PRIVS_DROPPED,    "CHD1016", "root privileges dropped", "chand was started as root and switched to the configured service user and its groups. Nothing to do.") \
	X(TEST_HOOK,        "CHD1017", "test setting in effect", "A CHAND_TEST_* environment variable changed a timing of the agent. It is meant for tests only: unset it in production.") \
	X(METRICS_START,    "CHD1018", "metrics endpoint serving", "The agent serves Prometheus metrics at the address given (metrics.listen). Nothing to do.") \
	X(ACCEPT_FAILED,    "CHD1019", "cannot accept connections", "accept() failed on a listener or the admin socket, usually for lack of file descriptors; the agent pauses briefly and retries. Raise ulimit -n or reduce the number of connections.") \
	X(SRC_LIMIT,        "CHD1020", "too many connections from one address", "A listener refused a connection because its source address (for IPv6, its /64 prefix) already holds as many connections that have not finished their handshake as allowed (32 at the channel listener). One line per address per minute, with the number of refusals held back. A legitimate host behind one address opening many channels at once retries; otherwise look for a scan or a flood from that address.") \
	X(Q_UNKNOWN,        "CHD2001", "unknown queue", "No queue with that name is defined on this queue manager.") \
	X(Q_FULL,           "CHD2002", "queue full", "The queue holds MAXDEPTH messages. Get messages or raise MAXDEPTH with alter qlocal.") \
	X(Q_MSG_TOO_LONG,   "CHD2003", "message too long", "The message is longer than the queue's MAXMSGL (or the agent's max_msg_length).") \
	X(Q_NOT_EMPTY,      "CHD2004", "queue not empty", "delete queue refuses a queue that holds messages; use --purge to discard them.") \
	X(Q_EXISTS,         "CHD2005", "object exists", "An object with that name is already defined; use --replace to redefine it.") \
	X(Q_BAD_NAME,       "CHD2006", "invalid name", "Names are 1-48 characters of A-Z a-z 0-9 . _ / %.") \
	X(Q_PUT_INHIBITED,  "CHD2007", "put inhibited", "The queue has PUT(DISABLED).") \
	X(Q_GET_INHIBITED,  "CHD2008", "get inhibited", "The queue has GET(DISABLED).") \
	X(Q_NO_MSG,         "CHD2009", "no message available", "The queue held no message (within --wait).") \
	X(Q_BAD_XMITQ,      "CHD2010", "invalid transmission queue", "The remote queue's XMITQ is not a local queue with USAGE(XMITQ).") \
	X(Q_IN_USE,         "CHD2011", "object in use", "The object is used by another definition or a running channel.") \
	X(Q_DEFINED,        "CHD2012", "queue defined", "A queue was defined (or redefined with --replace) through the admin socket; the line gives its type and the client uid. Nothing to do.") \
	X(Q_ALTERED,        "CHD2013", "queue altered", "A queue's attributes were changed with alter. Nothing to do.") \
	X(Q_DELETED,        "CHD2014", "queue deleted", "A queue was deleted (with its messages if purged). Nothing to do unless it was not intended.") \
	X(KS_OPEN,          "CHD3001", "keystore unreadable", "The keystore file could not be opened or read. Check keystore.path and its permissions.") \
	X(KS_PERMS,         "CHD3002", "keystore or stash readable by others", "The keystore and its stash must be mode 0600 (no group or other access). chmod 600 them.") \
	X(KS_PASSWORD,      "CHD3003", "wrong keystore password", "The password (from the stash file, --password-file or the prompt) does not open the keystore.") \
	X(KS_LABEL_MISSING, "CHD3004", "certificate label not found", "No personal certificate with that label is in the keystore. Import one, or fix CERTLABL / keystore.label.") \
	X(KS_KEY_MISMATCH,  "CHD3005", "key does not match certificate", "The private key given does not belong to the certificate.") \
	X(KS_KEY_PASSWORD,  "CHD3006", "wrong or missing private key password", "The private key is encrypted; give its password with --key-password-file.") \
	X(KS_BAD_FILE,      "CHD3007", "unreadable certificate or key file", "The file is not a PEM/DER certificate, key, CRL or PKCS#12 file chand understands.") \
	X(KS_EXPIRING,      "CHD3008", "certificate expires soon", "A certificate in the keystore expires within tls.expiry_warning_days. Renew it and refresh security.") \
	X(KS_CHAIN,         "CHD3009", "certificate chain incomplete", "The chain of a personal certificate does not reach a trusted root in the keystore. Trust the CA certificates.") \
	X(KS_ABSENT,        "CHD3010", "no keystore", "The keystore file does not exist, so only channels with an empty SSLCIPH can run; TLS channels fail with CHD4008. Create the keystore (chanctl keystore create) and refresh security if TLS is wanted.") \
	X(KS_LOADED,        "CHD3011", "keystore loaded", "The agent loaded its keystore, stash and CRLs; new TLS handshakes use them. Nothing to do.") \
	X(KS_REFRESHED,     "CHD3012", "security refreshed", "refresh security reloaded the keystore; new TLS handshakes use it, running channels keep their sessions, except those whose peer certificate the reloaded trust or CRLs no longer accept: they are ended, each with its own line. Nothing to do.") \
	X(TLS_NO_CERT,      "CHD4001", "no certificate sent by peer", "The initiator sent no certificate but the channel has SSLCAUTH(REQUIRED) or an SSLPEER. Give the initiator a certificate under its label.") \
	X(TLS_UNTRUSTED,    "CHD4002", "untrusted issuer", "The peer's certificate does not chain to a trusted certificate in the keystore. Trust its CA (keystore trust).") \
	X(TLS_EXPIRED,      "CHD4003", "certificate expired or not yet valid", "The peer's certificate (or one of its chain) is outside its validity dates. Renew it, or check the clocks.") \
	X(TLS_REVOKED,      "CHD4004", "certificate revoked", "The peer's certificate is on a loaded CRL.") \
	X(TLS_SSLPEER,      "CHD4005", "SSLPEER mismatch", "The peer's distinguished name does not match the channel's SSLPEER filter. The message gives the peer DN; test filters with chanctl check-peer.") \
	X(TLS_CIPHER,       "CHD4006", "CipherSpec mismatch", "The two ends name CipherSpecs that share no suite or protocol version. Set compatible SSLCIPH at both ends.") \
	X(TLS_LABEL,        "CHD4007", "certificate label not found", "The channel's CERTLABL (or the queue manager's default label) is not in the keystore.") \
	X(TLS_KEYSTORE,     "CHD4008", "keystore unreadable", "The agent could not load its keystore, stash or CRLs. See the reason, fix it and refresh security.") \
	X(TLS_TIMEOUT,      "CHD4009", "handshake timeout", "The TLS handshake did not finish in time. Check the network and that the peer speaks TLS.") \
	X(TLS_HANDSHAKE,    "CHD4010", "TLS handshake failed", "The TLS handshake failed for another reason, given in the message (GnuTLS error name).") \
	X(TLS_BAD_CERT,     "CHD4011", "certificate not acceptable", "The peer's certificate was refused: bad signature, insecure algorithm, wrong key usage or not a CA where one is needed.") \
	X(TLS_PLAINTEXT,    "CHD4012", "channel not encrypted", "The channel has an empty SSLCIPH and runs over plain TCP. Anyone on the network can read and alter its messages.") \
	X(TLS_PEER_REFUSED, "CHD4013", "refused by the peer", "The remote end refused the TLS handshake with an alert; its log names the cause.") \
	X(TLS_SNI,          "CHD4014", "unknown channel in SNI", "The initiator asked for a channel this responder does not define (or sent no channel name).") \
	X(TLS_HOSTNAME,     "CHD4015", "host name mismatch", "The responder's certificate does not name the host the channel checks (--verify-host yes: the CONNAME host; or the name given): neither a SAN DNS/IP entry nor, when the certificate has no SAN, its CN. The message names both. Fix CONNAME or --verify-host, or issue the responder a certificate with that name in its SAN.") \
	X(CH_START,         "CHD5001", "channel started", "The channel completed negotiation and is running.") \
	X(CH_STOP,          "CHD5002", "channel ended", "The channel ended normally (stop, disconnect interval, or the peer closed).") \
	X(CH_CONNECT,       "CHD5003", "cannot connect", "The initiator could not open a TCP connection to CONNAME. The channel retries per SHORTRTY/LONGRTY.") \
	X(CH_UNKNOWN,       "CHD5004", "unknown channel", "The remote end has no channel of that name.") \
	X(CH_TYPE,          "CHD5005", "wrong channel type", "The two ends' types do not pair (SDR-RCVR, RQSTR-SVR, SVR-RQSTR).") \
	X(CH_QMGR,          "CHD5006", "queue manager name mismatch", "The transmission header names a queue manager other than the one at the far end.") \
	X(CH_SEQ,           "CHD5007", "sequence number mismatch", "The two ends disagree on the message sequence number; use reset channel after checking for lost messages.") \
	X(CH_INDOUBT,       "CHD5008", "channel in doubt", "A batch is in doubt and could not be resolved with the peer; use resolve channel or restart the peer.") \
	X(CH_PROTOCOL,      "CHD5009", "protocol error", "The peer sent a malformed, oversized or unexpected frame; the channel was closed.") \
	X(CH_HEARTBEAT,     "CHD5010", "peer not responding", "No data or heartbeat from the peer within the heartbeat timeout; the connection is treated as broken.") \
	X(CH_RETRYING,      "CHD5011", "channel retrying", "The channel failed and will retry per SHORTRTY/SHORTTMR then LONGRTY/LONGTMR.") \
	X(CH_STOPPED,       "CHD5012", "channel stopped", "The channel is STOPPED (retries exhausted or stop channel) and stays so until start channel.") \
	X(CH_DLQ,           "CHD5013", "message put to dead-letter queue", "A message could not be delivered to its target queue and was put to the dead-letter queue with a reason.") \
	X(CH_NO_DLQ,        "CHD5014", "no usable dead-letter queue", "A message could not be delivered and there is no usable dead-letter queue, so the channel stopped rather than lose it.") \
	X(CH_VERSION,       "CHD5015", "protocol version mismatch", "The two agents share no channel protocol version.") \
	X(CH_MAXCHANNELS,   "CHD5016", "too many channels", "limits.max_channels channels are running already.") \
	X(CH_CLOSED,        "CHD5017", "connection closed", "The connection to the peer closed or broke during the channel.") \
	X(CH_SEQWRAP,       "CHD5018", "SEQWRAP mismatch", "The two ends define different SEQWRAP values for the channel. Set the same SEQWRAP at both ends.") \
	X(CH_IN_USE,        "CHD5019", "channel in use", "A new connection arrived for a channel whose previous instance did not end in time. Retry; if it persists, stop the channel at this end.") \
	X(CH_DEFINED,       "CHD5020", "channel defined", "A channel was defined (or redefined with --replace). Nothing to do.") \
	X(CH_ALTERED,       "CHD5021", "channel altered", "A channel's attributes were changed. A running instance keeps its old settings until it restarts: stop and start it to apply them now.") \
	X(CH_DELETED,       "CHD5022", "channel deleted", "A channel definition was deleted. Nothing to do unless it was not intended.") \
	X(CH_START_REQ,     "CHD5023", "start channel", "An operator started the channel (start channel): an initiator connects now, a responder waits for its partner.") \
	X(CH_STOP_REQ,      "CHD5024", "stop channel", "An operator asked the channel to stop (quiesce ends after the current batch, force at once); it stays STOPPED until start channel.") \
	X(CH_PING,          "CHD5025", "channel ping", "A ping channel test exchanged data with the peer over the channel's connection and TLS settings (on the initiator with the round-trip time; on the responder when it answered). Nothing to do.") \
	X(CH_RESET,         "CHD5026", "channel sequence number reset", "An operator set the channel's next message sequence number (reset channel). A sender tells the receiver at its next start.") \
	X(CH_REPLACED,      "CHD5027", "channel instance replaced", "A new connection arrived for a responder channel that was still running; the old instance is ended in its favour (usually the partner restarted). Frequent lines mean two partners share the channel name.") \
	X(CH_LOADED,        "CHD5028", "channel definitions loaded", "The channel supervisor started with the number of channels defined. Nothing to do.") \
	X(CH_TRIGGERED,     "CHD5029", "channel triggered", "Messages arrived on the transmission queue of an inactive initiator channel, so the agent starts it. Nothing to do.") \
	X(CH_REFUSED_PLAIN, "CHD5030", "refused over plain TCP", "The responder refused a channel that came over plain TCP (no TLS). Over an unauthenticated connection it does not say why, which would tell anyone which channels exist and how they are set up: the reason is in the responder's log and in that channel's status there. Usual causes: the channel is not defined there, needs TLS (set SSLCIPH at both ends), or does not pair.") \
	X(ADM_REFUSED,      "CHD6001", "admin client refused", "A process whose user is neither the agent's owner nor in the admin group tried to use the admin socket.") \
	X(ADM_BAD_REQUEST,  "CHD6002", "malformed admin request", "An admin client sent a request that could not be decoded; it was disconnected.") \
	X(ADM_VERSION,      "CHD6003", "incompatible chanctl and chand", "chanctl and chand speak different admin protocol versions; use matching versions.") \
	X(ADM_NO_AGENT,     "CHD6004", "no agent at socket", "chanctl found no running chand at the admin socket path. Start chand (systemctl start chand@QM1, or chand -c FILE), and check that chanctl looks at the right agent: -s SOCKET, -c CONFIG, -m QMGR or $CHAND_CONF, in that order, else the default configuration; the path it tried is in the message.") \
	X(MQ_CONNECTED,     "CHD7001", "MQTT client connected", "An MQTT client completed CONNECT on a telemetry channel; the line gives its client id, identity, protocol and address. Nothing to do.") \
	X(MQ_DISCONNECTED,  "CHD7002", "MQTT client disconnected", "An MQTT client went away; the line says why (DISCONNECT, closed, taken over, stopped by an operator). A persistent session keeps its subscriptions and messages.") \
	X(MQ_PROTOCOL,      "CHD7003", "MQTT protocol error", "An MQTT client sent a malformed, oversized or unexpected packet (or CONNECT was not first); that connection was closed (MQTT 5: DISCONNECT with the reason code). Other clients are not affected. Fix the client.") \
	X(MQ_BAD_AUTH,      "CHD7004", "MQTT bad user name or password", "A client's CONNECT named a user that is not in the channel's password file, gave the wrong password, or gave none where anonymous clients are not allowed. It got CONNACK 4 (MQTT 5: 0x86).") \
	X(MQ_DENIED,        "CHD7005", "MQTT not authorized", "The channel's ACL file does not let this client publish to or subscribe to that topic; the client got a SUBACK failure or (MQTT 5) reason 0x87, and a denied MQTT 3.1.1 publish was dropped. Change the ACL file and refresh security if it should be allowed.") \
	X(MQ_TIMEOUT,       "CHD7006", "MQTT client timed out", "A client sent no CONNECT in time after connecting, or nothing within 1.5 times its keepalive; the connection was closed (its will, if any, is published).") \
	X(MQ_CHANNEL,       "CHD7007", "telemetry channel started or stopped", "A telemetry channel (type mqtt) began or stopped listening on its port. Nothing to do.") \
	X(MQ_LISTEN,        "CHD7008", "telemetry channel cannot listen", "The channel's address and port could not be bound (in use, or not an address of this host). Choose another port or stop what uses it, then start channel.") \
	X(MQ_LIMIT,         "CHD7009", "MQTT connection refused by a limit", "A connection was refused because the channel has max_clients clients, or its source address has too many connections still in their TLS handshake or CONNECT. Raise --max-clients, or find the client that opens so many connections.") \
	X(MQ_SESSION,       "CHD7010", "MQTT session ended", "A persistent MQTT session expired (its session expiry interval passed while the client was away) or was discarded by a clean start; its subscriptions and waiting messages were removed.") \
	X(MQ_STORE,         "CHD7011", "MQTT publication not stored", "A QoS 1/2 publication or session change could not be committed to the database (disk full, I/O error); the publisher got no acknowledgement and will resend. Free disk space; see the database error.") \
	X(MQ_FILE,          "CHD7012", "password or ACL file unusable", "The channel's password or ACL file could not be read or parsed; the message names the file and line. Fix it and refresh security (the old rules stay in force until then) or start channel.") \
	X(MQ_DROPPED,       "CHD7013", "MQTT messages dropped for a client", "A client's queue of waiting messages reached its bound, or a message was larger than the client's maximum packet size, so messages for it were dropped (counted in status). Make the client read faster, or use a persistent session with QoS 1/2.") \
	X(MQ_TLS,           "CHD7014", "MQTT client TLS refused", "An MQTT client's TLS handshake was refused; the message says why (no certificate on SSLCAUTH(REQUIRED), untrusted issuer, SSLPEER mismatch, ...). The MQTT client sees a TLS alert.")

enum chd_code_id {
#define CHD_X_ENUM(id, code, text, help) CHD_##id,
	CHD_CODES(CHD_X_ENUM)
#undef CHD_X_ENUM
	CHD__COUNT
};

struct chd_code {
	const char *code;  /* "CHD4001" */
	const char *text;  /* short text */
	const char *help;  /* meaning and action */
};

/* Code string of an id, e.g. code_str(CHD_TLS_NO_CERT) == "CHD4001". */
const char *code_str(enum chd_code_id id);
const char *code_text(enum chd_code_id id);
/* Lookup by "CHD4001" (case-insensitive, "4001" accepted); NULL if unknown. */
const struct chd_code *code_lookup(const char *code);
const struct chd_code *code_table(size_t *count);

/* The one way the channel code makes an error: the text into text[len]
 * (nothing if text is NULL), and code into *codep when codep is given.
 * Returns -1, what the callers return.  The setters around it differ only
 * in where the error goes: a caller's buffer (chan_def.c), a command's
 * result (chan_ops.c), the session's first failure (chan_fail), a refusal
 * sent to the peer (chan_inbound.c refuse) or a rate-limited log line
 * (inb_log_refusal). */
int code_vset(enum chd_code_id *codep, enum chd_code_id code, char *text, size_t len,
              const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
