/* MQTT packet codec: MQTT 3.1 (MQIsdp), 3.1.1 and 5.0 (OASIS texts).
 *
 * Pure functions: bytes in, structs out; structs in, bytes out.  No I/O,
 * no logging, no global state, no allocation while decoding: safe from any
 * thread.  Decoded strings and binary data are views into the packet
 * buffer (zero-copy): they live as long as that buffer does.
 *
 * Reading, on an event loop:
 *
 *	rc = mqtt_fixed_header(buf, have, &tf, &remaining, &hdr_len);
 *	MQTT_NEED_MORE: wait for more bytes; MQTT_MALFORMED: close (v5:
 *	DISCONNECT 0x81); MQTT_OK: check hdr_len + remaining against the
 *	maximum packet size (v5: DISCONNECT 0x95), wait until that many bytes
 *	are there, then
 *	mqtt_decode(buf, hdr_len + remaining, session_version, &pkt, &err);
 *
 * session_version is 0 until a CONNECT has been accepted (then only a
 * CONNECT decodes), then the CONNECT's version (then a second CONNECT is a
 * protocol error, [MQTT-3.1.0-2]).
 *
 * Errors carry an MQTT 5 reason code (what a v5 server sends in CONNACK or
 * DISCONNECT; a v3 server closes the connection, or answers CONNACK 0x01
 * for 0x84 and 0x02 for 0x85) and one line of text naming the field and
 * offset.
 *
 * What the codec checks is everything that can be judged from one packet
 * alone (flags, lengths, UTF-8, property rules, reason codes allowed per
 * packet type, wildcards in topic names).  What needs session state is the
 * broker's: topic alias resolution and its maximum, receive maximum,
 * packet identifiers in use, auth method continuity, session expiry on
 * DISCONNECT when CONNECT had 0, topic filter syntax (pubsub module).
 *
 * UTF-8 (MQTT-1.5.4): well-formed UTF-8 only (no overlong forms, nothing
 * past U+10FFFF), no surrogates U+D800..U+DFFF [MQTT-1.5.4-1], no U+0000
 * [MQTT-1.5.4-2].  Control characters U+0001..U+001F, U+007F..U+009F and
 * non-characters are accepted: the spec says senders SHOULD NOT send them
 * and receivers MAY refuse them (1.5.4, 3.1.1 and 5.0); refusing would
 * break clients for no safety gain (every string is length-delimited).
 * A BOM (EF BB BF) is kept as is [MQTT-1.5.4-3].
 *
 * Writing: encoders append one complete packet to a struct mqtt_wbuf
 * (reserving its size once); on failure they leave the buffer as it was
 * and return -1 with errno ENOMEM or EINVAL (a value out of range: QoS 3,
 * packet identifier 0 with QoS > 0, a string over 65535 bytes, a property
 * not allowed in that packet, a packet over 268435455 bytes...). */
#ifndef CHAND_MQTT_CODEC_H
#define CHAND_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mqtt_ver { MQTT_V31 = 3, MQTT_V311 = 4, MQTT_V5 = 5 };

enum mqtt_ptype {
	MQTT_CONNECT = 1,
	MQTT_CONNACK,
	MQTT_PUBLISH,
	MQTT_PUBACK,
	MQTT_PUBREC,
	MQTT_PUBREL,
	MQTT_PUBCOMP,
	MQTT_SUBSCRIBE,
	MQTT_SUBACK,
	MQTT_UNSUBSCRIBE,
	MQTT_UNSUBACK,
	MQTT_PINGREQ,
	MQTT_PINGRESP,
	MQTT_DISCONNECT,
	MQTT_AUTH,
};

enum mqtt_rc {
	MQTT_OK = 0,
	MQTT_NEED_MORE = 1,    /* mqtt_fixed_header: not all of it is there yet */
	MQTT_MALFORMED = -1,   /* mqtt_fixed_header: remaining length over 4 bytes / not minimal */
};

/* ---- limits ---- */
#define MQTT_REMAINING_MAX 268435455u  /* largest variable byte integer */
#define MQTT_FIXED_HEADER_MAX 5
#define MQTT_STRING_MAX 65535u
#define MQTT_SUB_IDS_MAX 32      /* subscription ids kept per PUBLISH (more: error 0x83) */

/* Reason codes (MQTT 5, 2.4) used by the codec and the broker. */
enum mqtt_reason {
	MQTT_RC_SUCCESS = 0x00,              /* also Normal disconnection, Granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTH = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED = 0x80,
	MQTT_RC_MALFORMED = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPL_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_INVALID = 0x85,
	MQTT_RC_BAD_USER_PASS = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTH_METHOD = 0x8C,
	MQTT_RC_KEEPALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PID_IN_USE = 0x91,
	MQTT_RC_PID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMIN_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAX_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.1 / 3.1.1 CONNACK return codes. */
enum mqtt_v3_connack {
	MQTT_V3_ACCEPTED = 0,
	MQTT_V3_BAD_VERSION = 1,
	MQTT_V3_ID_REJECTED = 2,
	MQTT_V3_SERVER_UNAVAILABLE = 3,
	MQTT_V3_BAD_USER_PASS = 4,
	MQTT_V3_NOT_AUTHORIZED = 5,
};

/* A view into the packet (or any caller buffer); p may be NULL when len is 0. */
struct mqtt_bytes {
	const uint8_t *p;
	size_t len;
};

/* ---- v5 properties ---- */
/* Property identifiers (MQTT 5, 2.2.2.2). */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUB_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* Bits of struct mqtt_props.present: one per single-valued property,
 * plus MQTT_PB_SUB_ID when n_sub_ids > 0 and MQTT_PB_USER when n_user > 0. */
#define MQTT_PB_PAYLOAD_FORMAT (1u << 0)
#define MQTT_PB_MESSAGE_EXPIRY (1u << 1)
#define MQTT_PB_CONTENT_TYPE (1u << 2)
#define MQTT_PB_RESPONSE_TOPIC (1u << 3)
#define MQTT_PB_CORRELATION_DATA (1u << 4)
#define MQTT_PB_SUB_ID (1u << 5)
#define MQTT_PB_SESSION_EXPIRY (1u << 6)
#define MQTT_PB_ASSIGNED_CLIENT_ID (1u << 7)
#define MQTT_PB_SERVER_KEEP_ALIVE (1u << 8)
#define MQTT_PB_AUTH_METHOD (1u << 9)
#define MQTT_PB_AUTH_DATA (1u << 10)
#define MQTT_PB_REQUEST_PROBLEM_INFO (1u << 11)
#define MQTT_PB_WILL_DELAY (1u << 12)
#define MQTT_PB_REQUEST_RESPONSE_INFO (1u << 13)
#define MQTT_PB_RESPONSE_INFO (1u << 14)
#define MQTT_PB_SERVER_REFERENCE (1u << 15)
#define MQTT_PB_REASON_STRING (1u << 16)
#define MQTT_PB_RECEIVE_MAXIMUM (1u << 17)
#define MQTT_PB_TOPIC_ALIAS_MAXIMUM (1u << 18)
#define MQTT_PB_TOPIC_ALIAS (1u << 19)
#define MQTT_PB_MAXIMUM_QOS (1u << 20)
#define MQTT_PB_RETAIN_AVAILABLE (1u << 21)
#define MQTT_PB_USER (1u << 22)
#define MQTT_PB_MAXIMUM_PACKET_SIZE (1u << 23)
#define MQTT_PB_WILDCARD_SUB_AVAILABLE (1u << 24)
#define MQTT_PB_SUB_ID_AVAILABLE (1u << 25)
#define MQTT_PB_SHARED_SUB_AVAILABLE (1u << 26)

/* The properties of one packet (or of a CONNECT's will).  A field is
 * meaningful only when its bit is in present.  Decoding zeroes the struct
 * first.  Encoders write every property whose bit is set (refusing one not
 * allowed in that packet type), sub_ids[0..n_sub_ids), and the user
 * properties found in raw (n_user of them). */
struct mqtt_props {
	uint32_t present;
	uint8_t payload_format;              /* 0 unspecified bytes, 1 UTF-8 */
	uint32_t message_expiry;             /* seconds */
	struct mqtt_bytes content_type, response_topic, correlation_data;
	uint32_t sub_ids[MQTT_SUB_IDS_MAX];  /* 1..268435455 */
	size_t n_sub_ids;
	uint32_t session_expiry;
	struct mqtt_bytes assigned_client_id;
	uint16_t server_keep_alive;
	struct mqtt_bytes auth_method, auth_data;
	uint8_t request_problem_info, request_response_info;   /* 0 or 1 */
	uint32_t will_delay;
	struct mqtt_bytes response_info, server_reference, reason_string;
	uint16_t receive_maximum, topic_alias_maximum, topic_alias;   /* receive max, alias: > 0 */
	uint8_t maximum_qos, retain_available, wildcard_sub_available, sub_id_available,
	        shared_sub_available;
	uint32_t maximum_packet_size;        /* > 0 */
	/* User properties: how many, and where to find them: raw is a whole
	 * property block (without its length prefix) that holds them, possibly
	 * among other properties; iterate with mqtt_user_next().  Decoding sets
	 * raw to the packet's own property block (already validated). */
	size_t n_user;
	struct mqtt_bytes raw;
};

/* Iterates the user properties of props: start with *pos = 0; returns
 * true and sets key and value (UTF-8 views) for each, false at the end
 * (or if raw is not a well-formed property block). */
bool mqtt_user_next(const struct mqtt_props *props, size_t *pos, struct mqtt_bytes *key,
                    struct mqtt_bytes *value);

/* ---- packets ---- */
struct mqtt_connect {
	enum mqtt_ver version;
	bool clean;                 /* clean session (v3) / clean start (v5) */
	uint16_t keepalive;         /* seconds */
	struct mqtt_bytes client_id, username, password, will_topic, will_payload;
	bool has_username, has_password, will, will_retain;
	uint8_t will_qos;
	struct mqtt_props props, will_props;   /* v5 */
};

struct mqtt_connack {
	bool session_present;
	uint8_t reason;             /* v3: return code 0..5; v5: reason code */
	struct mqtt_props props;
};

struct mqtt_publish {
	struct mqtt_bytes topic, payload;   /* topic may be empty in v5 with props.topic_alias */
	uint8_t qos;
	bool retain, dup;
	uint16_t pid;               /* 0 when qos is 0 */
	struct mqtt_props props;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP; also UNSUBACK in v3 (pid only). */
struct mqtt_ack {
	uint16_t pid;
	uint8_t reason;             /* v3: always 0 */
	struct mqtt_props props;
};

struct mqtt_sub_entry {
	struct mqtt_bytes filter;
	uint8_t qos;                /* requested maximum QoS */
	bool no_local, retain_as_published;   /* v5 */
	uint8_t retain_handling;    /* v5: 0, 1 or 2 */
};

/* SUBSCRIBE and UNSUBSCRIBE: entries (n >= 1, all validated) are read
 * with mqtt_sub_next / mqtt_unsub_next from the payload view. */
struct mqtt_subscribe {
	uint16_t pid;
	struct mqtt_props props;    /* v5: subscription id (at most one), user properties */
	size_t n;
	struct mqtt_bytes payload;
};

/* SUBACK and UNSUBACK (v5; in v3 UNSUBACK has no codes: codes.len 0). */
struct mqtt_suback {
	uint16_t pid;
	struct mqtt_props props;
	struct mqtt_bytes codes;    /* one reason code per entry */
};

/* DISCONNECT (reason and props v5 only) and AUTH. */
struct mqtt_reason_pkt {
	uint8_t reason;
	struct mqtt_props props;
};

struct mqtt_packet {
	enum mqtt_ptype type;
	uint8_t flags;              /* low nibble of the first byte */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;            /* PUBACK PUBREC PUBREL PUBCOMP */
		struct mqtt_subscribe subscribe;    /* SUBSCRIBE UNSUBSCRIBE */
		struct mqtt_suback suback;      /* SUBACK UNSUBACK */
		struct mqtt_reason_pkt disconnect;  /* DISCONNECT */
		struct mqtt_reason_pkt auth;    /* AUTH */
	} u;
};

struct mqtt_error {
	uint8_t reason;             /* MQTT 5 reason code (enum mqtt_reason) */
	uint8_t level;              /* CONNECT: protocol level read (0 if not reached) */
	char text[160];             /* one line: packet, field, offset, what is wrong */
};

/* Fixed header: MQTT_NEED_MORE when not all of it is there yet, MQTT_OK
 * with the first byte (type << 4 | flags), remaining length and header
 * length (2..5), MQTT_MALFORMED for a remaining length over 4 bytes or not
 * in its minimal form [MQTT-1.5.5-1]. */
int mqtt_fixed_header(const uint8_t *buf, size_t len, uint8_t *type_flags, uint32_t *remaining,
                      size_t *hdr_len);

/* Decodes one whole packet (fixed header included, len exactly its size)
 * as a server does (packets a client sends).  version: the session's;
 * 0 before CONNECT.  Returns 0, or -1 with err set. */
int mqtt_decode(const uint8_t *pkt, size_t len, enum mqtt_ver version, struct mqtt_packet *out,
                struct mqtt_error *err);

/* Same, choosing the side: MQTT_DEC_CLIENT decodes packets a server sends
 * (CONNACK, SUBACK, UNSUBACK, PINGRESP, PUBLISH with subscription ids...);
 * flags 0 is mqtt_decode.  With MQTT_DEC_CLIENT, version must be set. */
#define MQTT_DEC_CLIENT 0x1u
int mqtt_decode_ex(const uint8_t *pkt, size_t len, enum mqtt_ver version, unsigned flags,
                   struct mqtt_packet *out, struct mqtt_error *err);

/* Iterators over a decoded SUBSCRIBE / UNSUBSCRIBE (start with *pos = 0;
 * false at the end).  The version is the one it was decoded with. */
bool mqtt_sub_next(const struct mqtt_subscribe *s, enum mqtt_ver version, size_t *pos,
                   struct mqtt_sub_entry *e);
bool mqtt_unsub_next(const struct mqtt_subscribe *s, size_t *pos, struct mqtt_bytes *filter);

/* ---- encoding ---- */
struct mqtt_wbuf {
	uint8_t *p;
	size_t len, cap;
};

void mqtt_wbuf_init(struct mqtt_wbuf *w);
void mqtt_wbuf_free(struct mqtt_wbuf *w);
int mqtt_wbuf_reserve(struct mqtt_wbuf *w, size_t extra);   /* 0 or -1 ENOMEM */

/* A PUBLISH to send.  v5 only: fwd_props (a property block from
 * mqtt_props_forward_encode, copied as is), subscription ids, the message
 * expiry remaining (has_expiry) and a topic alias (0: none). */
struct mqtt_publish_out {
	struct mqtt_bytes topic, payload;
	uint8_t qos;
	bool retain, dup;
	uint16_t pid;
	struct mqtt_bytes fwd_props;
	const uint32_t *sub_ids;
	size_t n_sub_ids;
	bool has_expiry;
	uint32_t message_expiry;
	uint16_t topic_alias;
};

/* Total bytes mqtt_encode_publish would append (0 if it would refuse it):
 * to check against a client's maximum packet size before encoding. */
size_t mqtt_publish_size(enum mqtt_ver v, const struct mqtt_publish_out *p);
int mqtt_encode_publish(struct mqtt_wbuf *w, enum mqtt_ver v, const struct mqtt_publish_out *p);

/* Appends the forwardable properties of a received PUBLISH (payload
 * format, content type, response topic, correlation data, user
 * properties; not the topic alias, subscription ids nor message expiry)
 * as a property block without length prefix, for storage and for
 * mqtt_publish_out.fwd_props.  Nothing is appended when there are none. */
int mqtt_props_forward_encode(const struct mqtt_props *props, struct mqtt_wbuf *w);

/* Appends one user property (a property block of its own) to w, e.g. to
 * build mqtt_props.raw for an encoder. */
int mqtt_user_append(struct mqtt_wbuf *w, const char *key, size_t klen, const char *value,
                     size_t vlen);

/* Server side.  props may be NULL (none); ignored in v3. */
int mqtt_encode_connack(struct mqtt_wbuf *w, enum mqtt_ver v, bool session_present,
                        uint8_t reason, const struct mqtt_props *props);
/* type: MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL or MQTT_PUBCOMP.  v5: the
 * reason code and properties are omitted when success with no properties. */
int mqtt_encode_ack(struct mqtt_wbuf *w, enum mqtt_ver v, enum mqtt_ptype type, uint16_t pid,
                    uint8_t reason, const struct mqtt_props *props);
int mqtt_encode_suback(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid, const uint8_t *codes,
                       size_t n, const struct mqtt_props *props);
/* v3: codes ignored (UNSUBACK is the packet identifier alone). */
int mqtt_encode_unsuback(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                         const uint8_t *codes, size_t n, const struct mqtt_props *props);
int mqtt_encode_pingresp(struct mqtt_wbuf *w);
/* v5: reason omitted when 0 with no properties.  v3: a bare DISCONNECT
 * (sent by clients only). */
int mqtt_encode_disconnect(struct mqtt_wbuf *w, enum mqtt_ver v, uint8_t reason,
                           const struct mqtt_props *props);
/* v5 only (EINVAL otherwise). */
int mqtt_encode_auth(struct mqtt_wbuf *w, uint8_t reason, const struct mqtt_props *props);

/* Client side (tests, the fuzzer's round trips). */
int mqtt_encode_connect(struct mqtt_wbuf *w, const struct mqtt_connect *c);
int mqtt_encode_subscribe(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                          const struct mqtt_sub_entry *e, size_t n,
                          const struct mqtt_props *props);
int mqtt_encode_unsubscribe(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                            const struct mqtt_bytes *filters, size_t n,
                            const struct mqtt_props *props);
int mqtt_encode_pingreq(struct mqtt_wbuf *w);

/* ---- helpers ---- */
/* True if p[0..len) is a valid MQTT UTF-8 string body (see the top). */
bool mqtt_utf8_valid(const uint8_t *p, size_t len);
/* "Malformed Packet", ...; "Unknown reason code" for others. */
const char *mqtt_reason_name(uint8_t reason);
/* "CONNECT", ...; "reserved" for others. */
const char *mqtt_ptype_name(int type);

#endif
