/* One handler per MQTT packet a client sends (MQTT 3.1, 3.1.1, 5.0).
 * Loop thread only.  A malformed packet or a protocol error ends only that
 * connection (MQTT 5: DISCONNECT with the reason code first). */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/dnfilter.h"
#include "chand/log.h"
#include "chand/srclimit.h"
#include "mqtt_int.h"

static int connack_with(struct mq_conn *c, struct mq_job *job, const struct mqtt_props *ack,
                        bool present);

static void put_bytes(char *dst, size_t dstlen, const struct mqtt_bytes *b)
{
	size_t n = b->len < dstlen - 1 ? b->len : dstlen - 1;

	if (n > 0)
		memcpy(dst, b->p, n);
	dst[n] = '\0';
}

/* Printable copy of a client-supplied string for the log. */
static void printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void connack(struct mq_conn *c, bool present, uint8_t reason, const struct mqtt_props *p)
{
	if (mqtt_encode_connack(&c->w, c->version, present, reason, p) != 0)
		fatalx("out of memory");
	mq_conn_send(c);
}

/* Refuses a CONNECT: CONNACK with the code of the client's version, then
 * closes. v3 codes: 1 version, 2 id, 4 user/password, 5 not authorized. */
static int refuse(struct mq_conn *c, uint8_t v3, uint8_t v5, enum chd_code_id code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int refuse(struct mq_conn *c, uint8_t v3, uint8_t v5, enum chd_code_id code,
                  const char *fmt, ...)
{
	char text[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	connack(c, false, c->version == MQTT_V5 ? v5 : v3, NULL);
	mq_chan_error(c->ch, code, text);
	mq_conn_close(c, code, false, "%s", text);
	return -1;
}

/* The certificate's CN, or its RFC 4514 subject (what mosquitto's
 * use_identity_as_username / use_subject_as_username give). */
static bool cert_identity(struct mq_conn *c, bool whole_dn, char *out, size_t len)
{
	if (c->tc == NULL)
		return false;
	if (whole_dn) {
		if (c->tls.peer_dn[0] == '\0')
			return false;
		str_copy(out, c->tls.peer_dn, len);
		return true;
	}
	return tls_conn_peer_cn(c->tc, out, len) == 0 && out[0] != '\0';
}

static int handle_connect(struct mq_conn *c, const uint8_t *pkt, size_t len)
{
	struct mq_chan *ch = c->ch;
	const struct mqtt_def *d = &ch->def;
	struct mqtt_packet p;
	struct mqtt_error err;
	struct mqtt_connect *cn;
	struct mqtt_props ack;
	char cid[512], *client_id;
	struct mq_sess *s;
	bool present = false;
	int64_t expiry;
	unsigned bit;

	if (mqtt_decode(pkt, len, 0, &p, &err) != 0) {
		if (err.reason == MQTT_RC_UNSUPPORTED_VERSION) {
			c->version = err.level == 5 ? MQTT_V5 : MQTT_V311;
			return refuse(c, MQTT_V3_BAD_VERSION, MQTT_RC_UNSUPPORTED_VERSION, CHD_MQ_PROTOCOL,
			              "unsupported protocol: %s", err.text);
		}
		if (err.level == 5) {
			c->version = MQTT_V5;
			return refuse(c, 0, err.reason, CHD_MQ_PROTOCOL, "malformed CONNECT: %s",
			              err.text);
		}
		mq_conn_close(c, CHD_MQ_PROTOCOL, false, "malformed CONNECT: %s", err.text);
		return -1;
	}
	cn = &p.u.connect;
	c->version = cn->version;
	bit = cn->version == MQTT_V31 ? MQTT_PROTO_V31 : cn->version == MQTT_V311 ? MQTT_PROTO_V311
	                                                                       : MQTT_PROTO_V5;
	if (!(d->protocols & bit)) {
		char protos[32];
		mqtt_protocols_text(d->protocols, protos, sizeof protos);
		return refuse(c, MQTT_V3_BAD_VERSION, MQTT_RC_UNSUPPORTED_VERSION, CHD_MQ_PROTOCOL,
		              "protocol level %d is not enabled on channel %s (PROTOCOL %s)",
		              (int)cn->version, d->name, protos);
	}
	if (cn->version == MQTT_V5 && (cn->props.present & MQTT_PB_AUTH_METHOD))
		return refuse(c, 0, MQTT_RC_BAD_AUTH_METHOD, CHD_MQ_BAD_AUTH,
		              "extended authentication (AUTH method) is not supported");

	/* client identifier */
	if (cn->client_id.len >= sizeof cid)
		return refuse(c, MQTT_V3_ID_REJECTED, MQTT_RC_CLIENT_ID_INVALID, CHD_MQ_PROTOCOL,
		              "client id of %zu bytes is too long", cn->client_id.len);
	put_bytes(cid, sizeof cid, &cn->client_id);
	if (strlen(cid) != cn->client_id.len)
		return refuse(c, MQTT_V3_ID_REJECTED, MQTT_RC_CLIENT_ID_INVALID, CHD_MQ_PROTOCOL,
		              "client id holds a NUL character");
	bool assigned = false;
	if (cid[0] == '\0') {
		/* [MQTT-3.1.3-6/8]: 3.1.1 assigns one to a clean session only; 5
		 * always; 3.1 never */
		if (cn->version == MQTT_V31 || (cn->version == MQTT_V311 && !cn->clean))
			return refuse(c, MQTT_V3_ID_REJECTED, MQTT_RC_CLIENT_ID_INVALID, CHD_MQ_PROTOCOL,
			              "empty client id with a persistent session");
		uint8_t rnd[8];
		char hex[17];
		if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd) < 0)
			fatalx("gnutls_rnd failed");
		hex_encode(rnd, sizeof rnd, hex);
		snprintf(cid, sizeof cid, "chand-%s", hex);
		assigned = true;
	}

	/* keepalive */
	c->keepalive = cn->keepalive;
	bool ka_changed = false;
	if (d->keepalive_max > 0 && (cn->keepalive > d->keepalive_max || cn->keepalive == 0) &&
	    d->keepalive_max < 65535) {
		if (cn->version != MQTT_V5)
			return refuse(c, MQTT_V3_ID_REJECTED, 0, CHD_MQ_PROTOCOL,
			              "keepalive %u s is above the channel's KEEPALIVE_MAX %ld s (MQTT 3 "
			              "clients cannot be told another value)", cn->keepalive,
			              d->keepalive_max);
		c->keepalive = (uint16_t)d->keepalive_max;
		ka_changed = true;
	}

	/* who the client is: password, certificate, client id */
	c->anonymous = false;
	c->identity[0] = '\0';
	c->user[0] = '\0';
	if (cn->has_username) {
		put_bytes(c->user, sizeof c->user, &cn->username);
		printable(c->user);
	}
	if (ch->pw != NULL && cn->has_username) {
		if (!cn->has_password ||
		    !mqtt_passwd_check(ch->pw, c->user, cn->password.p, cn->password.len))
			return refuse(c, MQTT_V3_BAD_USER_PASS, MQTT_RC_BAD_USER_PASS, CHD_MQ_BAD_AUTH,
			              "client %s: bad user name or password for user '%s'", cid, c->user);
	} else if (ch->pw != NULL && cn->has_password) {
		return refuse(c, MQTT_V3_BAD_USER_PASS, MQTT_RC_BAD_USER_PASS, CHD_MQ_BAD_AUTH,
		              "client %s: password without a user name", cid);
	}
	if (d->mcauser[0] != '\0') {
		str_copy(c->identity, d->mcauser, sizeof c->identity);
	} else {
		switch (d->identity) {
		case MQTT_ID_CLIENTID:
			str_copy(c->identity, cid, sizeof c->identity);
			c->anonymous = ch->pw != NULL && !cn->has_username;
			break;
		case MQTT_ID_USERNAME:
			str_copy(c->identity, c->user, sizeof c->identity);
			c->anonymous = !cn->has_username;
			break;
		case MQTT_ID_CERT_CN:
		case MQTT_ID_CERT_DN:
			c->anonymous = !cert_identity(c, d->identity == MQTT_ID_CERT_DN, c->identity,
			                              sizeof c->identity);
			break;
		}
	}
	if (c->anonymous) {
		c->identity[0] = '\0';
		if (!mqtt_def_allow_anonymous(d))
			return refuse(c, MQTT_V3_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED, CHD_MQ_BAD_AUTH,
			              "client %s: anonymous clients are not allowed on channel %s (%s)",
			              cid, d->name, d->identity == MQTT_ID_CERT_CN ||
			              d->identity == MQTT_ID_CERT_DN ? "no client certificate"
			              : "no user name");
	}

	/* the will */
	if (cn->will) {
		char wt[1024];
		struct mqtt_wbuf fw;
		int64_t wexp = 0;

		if (cn->will_topic.len >= sizeof wt)
			return refuse(c, MQTT_V3_NOT_AUTHORIZED, MQTT_RC_TOPIC_NAME_INVALID,
			              CHD_MQ_PROTOCOL, "will topic too long");
		put_bytes(wt, sizeof wt, &cn->will_topic);
		if (ch->acl != NULL && !mqtt_acl_check(ch->acl, c->anonymous ? NULL : c->identity, cid,
		                                       wt, MQTT_ACL_WRITE))
			return refuse(c, MQTT_V3_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED, CHD_MQ_DENIED,
			              "client %s (%s) may not publish its will on '%s'", cid,
			              c->anonymous ? "anonymous" : c->identity, wt);
		mqtt_wbuf_init(&fw);
		if (cn->version == MQTT_V5) {
			if (mqtt_props_forward_encode(&cn->will_props, &fw) != 0)
				fatalx("out of memory");
			if (cn->will_props.present & MQTT_PB_MESSAGE_EXPIRY)
				wexp = cn->will_props.message_expiry;   /* relative: fixed when published */
			c->will_delay = (cn->will_props.present & MQTT_PB_WILL_DELAY)
			                ? cn->will_props.will_delay : 0;
		}
		c->will = mq_msg_new(cn->will_topic.p, cn->will_topic.len, cn->will_payload.p,
		                     cn->will_payload.len, fw.p, fw.len, cn->will_qos, cn->will_retain,
		                     0);
		c->will_expiry_s = wexp;
		mqtt_wbuf_free(&fw);
	}

	/* the session */
	if (cn->version == MQTT_V5)
		expiry = (cn->props.present & MQTT_PB_SESSION_EXPIRY)
		         ? (cn->props.session_expiry == 0xFFFFFFFFu ? -1 : (int64_t)cn->props.session_expiry) : 0;
	else
		expiry = cn->clean ? 0 : -1;
	bool expiry_changed = false;
	if (expiry != 0 && d->session_expiry_max < 4294967295LL &&
	    (expiry < 0 || expiry > d->session_expiry_max)) {
		expiry = d->session_expiry_max;
		expiry_changed = true;
	}
	client_id = cid;
	s = mq_sess_find(client_id);
	if (s != NULL && s->conn != NULL) {
		struct mq_conn *old = s->conn;
		mq_conn_abort(old, CHD_MQ_DISCONNECTED, MQTT_RC_SESSION_TAKEN_OVER,
		              "session taken over by a new connection from %s", c->peer);
		s = mq_sess_find(client_id);   /* a clean session ended with it */
	}
	struct mq_job *job = mq_job_new(DONE_NONE);
	if (s != NULL && (cn->clean || s->gone)) {
		if (s->persistent || s->subs != NULL)
			log_info(code_str(CHD_MQ_SESSION), "channel=%s client=%s clean start discards "
			         "the previous session", d->name, client_id);
		mq_sess_drop(s, job);
		s = NULL;
	}
	if (s != NULL) {
		present = true;
		mq_msg_unref(s->will);   /* reconnected within the will delay */
		s->will = NULL;
	} else {
		s = mq_sess_add(client_id);
	}
	str_copy(s->channel, d->name, sizeof s->channel);
	s->protocol = (int)cn->version;
	free(s->identity);
	s->identity = c->anonymous ? NULL : strdup(c->identity);
	s->expiry_s = expiry;
	s->disconnected_ms = 0;
	s->conn = c;
	c->sess = s;
	if (expiry != 0) {
		struct mq_op *op = mq_job_op(job, OP_SESS_PUT, client_id);
		str_copy(op->channel, d->name, sizeof op->channel);
		op->protocol = s->protocol;
		op->expiry_s = expiry;
		op->when_ms = 0;
		op->pid = s->next_pid;
		if (s->identity != NULL && (op->text = strdup(s->identity)) == NULL)
			fatalx("out of memory");
		s->persistent = true;
	} else if (s->persistent) {
		/* v5: a resumed session that now ends at disconnect */
		mq_job_op(job, OP_SESS_DEL, client_id);
		s->persistent = false;
	}

	/* CONNACK (after the session is durable) */
	memset(&ack, 0, sizeof ack);
	if (c->version == MQTT_V5) {
		ack.present |= MQTT_PB_RECEIVE_MAXIMUM | MQTT_PB_MAXIMUM_PACKET_SIZE |
		               MQTT_PB_TOPIC_ALIAS_MAXIMUM | MQTT_PB_SHARED_SUB_AVAILABLE;
		ack.receive_maximum = MQ_RECEIVE_MAX;
		ack.maximum_packet_size = (uint32_t)d->max_packet;
		ack.topic_alias_maximum = MQ_ALIAS_MAX;
		ack.shared_sub_available = 0;
		if (assigned) {
			ack.present |= MQTT_PB_ASSIGNED_CLIENT_ID;
			ack.assigned_client_id.p = (const uint8_t *)cid;
			ack.assigned_client_id.len = strlen(cid);
		}
		if (ka_changed) {
			ack.present |= MQTT_PB_SERVER_KEEP_ALIVE;
			ack.server_keep_alive = c->keepalive;
		}
		if (expiry_changed) {
			ack.present |= MQTT_PB_SESSION_EXPIRY;
			ack.session_expiry = expiry < 0 ? 0xFFFFFFFFu : (uint32_t)expiry;
		}
		c->client_recv_max = (cn->props.present & MQTT_PB_RECEIVE_MAXIMUM)
		                     ? cn->props.receive_maximum : 65535;
		c->client_max_packet = (cn->props.present & MQTT_PB_MAXIMUM_PACKET_SIZE)
		                       ? cn->props.maximum_packet_size : 0;
	}
	c->state = MC_ACTIVE;
	c->connected_ms = time_now_ms();
	if (c->counted_source) {
		srclimit_leave(&c->peer_ss);
		c->counted_source = false;
	}
	log_info(code_str(CHD_MQ_CONNECTED), "channel=%s client=%s identity=%s protocol=%s peer=%s "
	         "session=%s%s", d->name, client_id, c->anonymous ? "(anonymous)" : c->identity,
	         c->version == MQTT_V5 ? "5" : c->version == MQTT_V311 ? "3.1.1" : "3.1", c->peer,
	         expiry == 0 ? "clean" : "persistent", present ? " (resumed)" : "");
	if (connack_with(c, job, &ack, present) != 0)
		return -1;
	return 0;
}

/* ---- answers that wait for a commit ---- */

/* Sends the answer in j->pkt now if j has nothing to store, else once it
 * is committed; meanwhile the connection reads nothing more, so later
 * answers cannot overtake it. */
static void answer_after(struct mq_conn *c, struct mq_job *j)
{
	if (j->nops == 0 && j->done != DONE_SUBACK) {
		if (mqtt_wbuf_reserve(&c->w, j->pkt.len) != 0)
			fatalx("out of memory");
		memcpy(c->w.p + c->w.len, j->pkt.p, j->pkt.len);
		c->w.len += j->pkt.len;
		mq_conn_send(c);
		mq_job_free(j);
		return;
	}
	c->refs++;
	j->conn = c;
	c->paused++;
	mq_job_submit(j);
}

static int connack_with(struct mq_conn *c, struct mq_job *job, const struct mqtt_props *ack,
                        bool present)
{
	job->done = DONE_CONNACK;
	if (mqtt_encode_connack(&job->pkt, c->version, present, 0, ack) != 0)
		fatalx("out of memory");
	if (job->nops == 0) {
		connack(c, present, 0, ack);
		mq_job_free(job);
		mq_sess_resume(c->sess);
		return 0;
	}
	c->refs++;
	job->conn = c;
	c->paused++;
	mq_job_submit(job);
	return 0;
}

/* ---- PUBLISH ---- */

static bool may(struct mq_conn *c, const char *topic, enum mqtt_acl_access a)
{
	if (c->ch->acl == NULL)
		return true;
	return mqtt_acl_check(c->ch->acl, c->anonymous ? NULL : c->identity, c->sess->client_id,
	                      topic, a);
}

static int handle_publish(struct mq_conn *c, struct mqtt_publish *pub)
{
	struct mq_sess *s = c->sess;
	struct mqtt_wbuf fw;
	struct mq_msg *m;
	struct mq_job *job = NULL;
	const uint8_t *topic = pub->topic.p;
	size_t tlen = pub->topic.len;
	int64_t expiry = 0;

	if (c->version == MQTT_V5 && (pub->props.present & MQTT_PB_TOPIC_ALIAS)) {
		uint16_t a = pub->props.topic_alias;
		if (a == 0 || a > MQ_ALIAS_MAX) {
			mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_TOPIC_ALIAS_INVALID,
			              "topic alias %u is above the maximum %d", a, MQ_ALIAS_MAX);
			return -1;
		}
		if (tlen > 0) {
			free(c->aliases[a]);
			if ((c->aliases[a] = malloc(tlen + 1)) == NULL)
				fatalx("out of memory");
			memcpy(c->aliases[a], topic, tlen);
			c->aliases[a][tlen] = '\0';
		} else if (c->aliases[a] == NULL) {
			mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
			              "PUBLISH with unknown topic alias %u and no topic", a);
			return -1;
		} else {
			topic = (const uint8_t *)c->aliases[a];
			tlen = strlen(c->aliases[a]);
		}
	}
	if (tlen == 0) {
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_TOPIC_NAME_INVALID, "PUBLISH with an empty "
		              "topic");
		return -1;
	}
	if (pub->qos > 0 && c->inflight_in >= MQ_RECEIVE_MAX) {
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_RECEIVE_MAX_EXCEEDED,
		              "more than %d QoS 1/2 publications unacknowledged", MQ_RECEIVE_MAX);
		return -1;
	}
	/* a QoS 1 packet id that still awaits our PUBACK: sent again (DUP)
	 * it is answered by the PUBACK on its way; new, it is a protocol error
	 * ([MQTT-2.2.1-3]: a packet identifier is in use until acknowledged) */
	if (pub->qos == 1) {
		for (size_t i = 0; i < c->n_in1; i++)
			if (c->in1[i] == pub->pid) {
				if (pub->dup)
					return 0;
				mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "PUBLISH reuses "
				              "packet identifier %u while it is still in flight", pub->pid);
				return -1;
			}
	}
	/* QoS 2 sent again before PUBREL: acknowledge, do not publish twice */
	if (pub->qos == 2 && mq_in2_has(s, pub->pid)) {
		if (mqtt_encode_ack(&c->w, c->version, MQTT_PUBREC, pub->pid, 0, NULL) != 0)
			fatalx("out of memory");
		mq_conn_send(c);
		return 0;
	}
	m = mq_msg_new(topic, tlen, pub->payload.p, pub->payload.len, NULL, 0, pub->qos, pub->retain,
	               0);
	if (strlen(m->topic) != tlen) {
		mq_msg_unref(m);
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_TOPIC_NAME_INVALID, "topic holds a NUL");
		return -1;
	}
	c->msgs_in++;
	s->msgs_in++;
	c->ch->msgs_in++;
	s->last_msg_ms = time_now_ms();
	if (!may(c, m->topic, MQTT_ACL_WRITE)) {
		log_warn(code_str(CHD_MQ_DENIED), "channel=%s client=%s identity=%s may not publish "
		         "to '%.200s'; dropped", c->ch->def.name, s->client_id,
		         c->anonymous ? "(anonymous)" : c->identity, m->topic);
		mq_msg_unref(m);
		/* 3.1.1 has no refusal: acknowledge and drop; 5 says 0x87 */
		if (pub->qos > 0) {
			if (mqtt_encode_ack(&c->w, c->version, pub->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
			                    pub->pid, c->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0,
			                    NULL) != 0)
				fatalx("out of memory");
			if (pub->qos == 2 && c->version != MQTT_V5)
				mq_in2_add(s, pub->pid);
			mq_conn_send(c);
		}
		return 0;
	}
	if (c->version == MQTT_V5) {
		mqtt_wbuf_init(&fw);
		if (mqtt_props_forward_encode(&pub->props, &fw) != 0)
			fatalx("out of memory");
		m->props = fw.p;
		m->prlen = fw.len;
		if (pub->props.present & MQTT_PB_MESSAGE_EXPIRY)
			expiry = time_now_ms() + (int64_t)pub->props.message_expiry * 1000;
	}
	m->expiry_ms = expiry;
	m->origin = s->id;
	if (pub->qos > 0) {
		job = mq_job_new(DONE_PUBLISH);
		c->refs++;
		job->conn = c;
		job->pid = pub->pid;
		job->qos = pub->qos;
		mq_msg_ref(m);
		job->m = m;
		c->inflight_in++;
		if (pub->qos == 1) {
			if (c->n_in1 == c->cap_in1) {
				size_t cap = c->cap_in1 ? c->cap_in1 * 2 : 16;
				uint16_t *n = realloc(c->in1, cap * sizeof *n);
				if (n == NULL)
					fatalx("out of memory");
				c->in1 = n;
				c->cap_in1 = cap;
			}
			c->in1[c->n_in1++] = pub->pid;
		}
	}
	mq_publish(m, job);
	if (pub->qos == 2) {
		/* after the publication's own operations: a route that refuses
		 * it fails the job before the id is recorded */
		mq_in2_add(s, pub->pid);
		if (s->persistent) {
			struct mq_op *op = mq_job_op(job, OP_IN2_PUT, s->client_id);
			op->pid = pub->pid;
		}
	}
	if (job != NULL)
		mq_job_submit(job);
	mq_msg_unref(m);
	return 0;
}

static int handle_pubrel(struct mq_conn *c, uint16_t pid)
{
	struct mq_sess *s = c->sess;

	if (!mq_in2_has(s, pid)) {
		if (mqtt_encode_ack(&c->w, c->version, MQTT_PUBCOMP, pid,
		                    c->version == MQTT_V5 ? MQTT_RC_PID_NOT_FOUND : 0, NULL) != 0)
			fatalx("out of memory");
		mq_conn_send(c);
		return 0;
	}
	mq_in2_del(s, pid);
	if (s->persistent) {
		/* the id must be free in the store before PUBCOMP lets the
		 * client use it again, or its next message would look like a
		 * duplicate after a crash */
		struct mq_job *j = mq_job_new(DONE_PUBREL);
		struct mq_op *op = mq_job_op(j, OP_IN2_DEL, s->client_id);
		op->pid = pid;
		c->refs++;
		j->conn = c;
		j->pid = pid;
		mq_job_submit(j);
		return 0;
	}
	if (mqtt_encode_ack(&c->w, c->version, MQTT_PUBCOMP, pid, 0, NULL) != 0)
		fatalx("out of memory");
	mq_conn_send(c);
	return 0;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

static struct mq_sub *sub_find(struct mq_sess *s, const char *filter, struct mq_sub ***pp)
{
	struct mq_sub **p = &s->subs;

	for (; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->filter, filter) == 0) {
			if (pp != NULL)
				*pp = p;
			return *p;
		}
	return NULL;
}

static int handle_subscribe(struct mq_conn *c, struct mqtt_subscribe *sp)
{
	struct mq_sess *s = c->sess;
	struct mq_job *j = mq_job_new(DONE_SUBACK);
	uint8_t codes[256], *cv = codes;
	size_t n = 0, pos = 0, cap = sizeof codes;
	uint32_t sub_id = sp->props.n_sub_ids > 0 ? sp->props.sub_ids[0] : 0;
	struct mqtt_sub_entry e;
	bool v5 = c->version == MQTT_V5;

	while (mqtt_sub_next(sp, c->version, &pos, &e)) {
		char *f;
		size_t errpos;
		const char *why;
		uint8_t rc;
		const char *g, *in;
		size_t gl, il;

		if (n == cap) {
			uint8_t *nv = malloc(cap * 2);
			if (nv == NULL)
				fatalx("out of memory");
			memcpy(nv, cv, n);
			if (cv != codes)
				free(cv);
			cv = nv;
			cap *= 2;
		}
		if ((f = malloc(e.filter.len + 1)) == NULL)
			fatalx("out of memory");
		memcpy(f, e.filter.p, e.filter.len);
		f[e.filter.len] = '\0';
		if (strlen(f) != e.filter.len ||
		    topic_filter_check(f, e.filter.len, &errpos, &why) != 0) {
			rc = v5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
			log_warn(code_str(CHD_MQ_PROTOCOL), "channel=%s client=%s invalid topic filter "
			         "'%.200s' (SUBACK failure)", c->ch->def.name, s->client_id, f);
		} else if (topic_filter_shared(f, e.filter.len, &g, &gl, &in, &il) != 0) {
			rc = v5 ? MQTT_RC_SHARED_SUBS_NOT_SUPPORTED : 0x80;
		} else if (!may(c, f, MQTT_ACL_SUBSCRIBE)) {
			rc = v5 ? MQTT_RC_NOT_AUTHORIZED : 0x80;
			log_warn(code_str(CHD_MQ_DENIED), "channel=%s client=%s identity=%s may not "
			         "subscribe to '%.200s' (SUBACK failure)", c->ch->def.name, s->client_id,
			         c->anonymous ? "(anonymous)" : c->identity, f);
		} else {
			uint8_t qos = e.qos > 2 ? 2 : e.qos;
			uint8_t opts = (uint8_t)(qos | (e.no_local ? 4 : 0) |
			                         (e.retain_as_published ? 8 : 0) |
			                         ((e.retain_handling & 3) << 4));
			struct mq_sub *sub = sub_find(s, f, NULL);
			bool isnew = sub == NULL;

			if (subtree_add(mq.subs, f, e.filter.len, s, opts, sub_id) < 0)
				fatalx("out of memory");
			if (isnew) {
				if ((sub = calloc(1, sizeof *sub)) == NULL || (sub->filter = strdup(f)) == NULL)
					fatalx("out of memory");
				sub->next = s->subs;
				s->subs = sub;
			}
			sub->qos = qos;
			sub->opts = opts;
			sub->sub_id = sub_id;
			rc = qos;
			/* each entry also carries whether its retained messages go
			 * out after the SUBACK (retain handling 0, or 1 when new) */
			struct mq_op *op = mq_job_op(j, OP_SUB_PUT, s->client_id);
			if ((op->text = strdup(f)) == NULL)
				fatalx("out of memory");
			op->qos = qos;
			op->opts = (uint8_t)((e.no_local ? 1 : 0) | (e.retain_as_published ? 2 : 0) |
			                     ((e.retain_handling & 3) << 2));
			op->sub_id = sub_id;
			op->state = e.retain_handling == 0 || (e.retain_handling == 1 && isnew);
		}
		cv[n++] = rc;
		free(f);
	}
	if (mqtt_encode_suback(&j->pkt, c->version, sp->pid, cv, n, NULL) != 0)
		fatalx("out of memory");
	if (cv != codes)
		free(cv);
	c->refs++;
	j->conn = c;
	if (!s->persistent) {
		/* answer now: a clean session stores nothing */
		mq_deliver_suback(j);
		mq_job_free(j);
		return 0;
	}
	c->paused++;
	mq_job_submit(j);
	return 0;
}

static int handle_unsubscribe(struct mq_conn *c, struct mqtt_subscribe *sp)
{
	struct mq_sess *s = c->sess;
	struct mq_job *j = mq_job_new(DONE_BYTES);
	uint8_t codes[256];
	size_t n = 0, pos = 0;
	struct mqtt_bytes fb;

	while (mqtt_unsub_next(sp, &pos, &fb)) {
		char *f = malloc(fb.len + 1);
		struct mq_sub **pp, *sub;

		if (f == NULL)
			fatalx("out of memory");
		memcpy(f, fb.p, fb.len);
		f[fb.len] = '\0';
		sub = sub_find(s, f, &pp);
		if (sub != NULL) {
			subtree_remove(mq.subs, f, fb.len, s);
			*pp = sub->next;
			free(sub->filter);
			free(sub);
			if (s->persistent) {
				struct mq_op *op = mq_job_op(j, OP_SUB_DEL, s->client_id);
				op->text = f;
				f = NULL;
			}
		}
		if (n < sizeof codes)
			codes[n++] = sub != NULL ? 0 : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
		free(f);
	}
	if (mqtt_encode_unsuback(&j->pkt, c->version, sp->pid, codes, n, NULL) != 0)
		fatalx("out of memory");
	answer_after(c, j);
	return 0;
}

void mq_deliver_suback(struct mq_job *j)
{
	struct mq_conn *c = j->conn;

	if (c == NULL || c->dead)
		return;
	if (j->rc != 0) {
		mq_conn_close(c, CHD_MQ_STORE, true, "subscriptions could not be stored: %s", j->err);
		return;
	}
	if (mqtt_wbuf_reserve(&c->w, j->pkt.len) != 0)
		fatalx("out of memory");
	memcpy(c->w.p + c->w.len, j->pkt.p, j->pkt.len);
	c->w.len += j->pkt.len;
	mq_conn_send(c);
	for (size_t i = 0; i < j->nops; i++) {
		struct mq_op *op = &j->ops[i];
		if (op->kind == OP_SUB_PUT && op->state && c->sess != NULL)
			mq_send_retained(c->sess, op->text, strlen(op->text), op->qos, op->sub_id);
	}
}

/* ---- outbound PUBLISH ---- */

static void publish_out(struct mq_conn *c, const struct mq_out *o, struct mqtt_publish_out *out);

bool mq_send_publish_fits(struct mq_conn *c, const struct mq_out *o)
{
	struct mqtt_publish_out po;

	if (c->client_max_packet == 0)
		return true;
	publish_out(c, o, &po);
	return mqtt_publish_size(c->version, &po) <= c->client_max_packet;
}

static void publish_out(struct mq_conn *c, const struct mq_out *o, struct mqtt_publish_out *out)
{
	struct mqtt_publish_out po;
	int64_t now;

	memset(&po, 0, sizeof po);
	po.topic.p = (const uint8_t *)o->m->topic;
	po.topic.len = o->m->tlen;
	po.payload.p = o->m->payload;
	po.payload.len = o->m->plen;
	po.qos = o->qos;
	po.retain = o->retain;
	po.dup = o->dup;
	po.pid = o->qos > 0 ? o->pid : 0;
	if (c->version == MQTT_V5) {
		po.fwd_props.p = o->m->props;
		po.fwd_props.len = o->m->prlen;
		if (o->sub_id != 0) {
			po.sub_ids = &o->sub_id;
			po.n_sub_ids = 1;
		}
		if (o->m->expiry_ms != 0) {
			now = time_now_ms();
			po.has_expiry = true;
			po.message_expiry = o->m->expiry_ms > now
			                    ? (uint32_t)((o->m->expiry_ms - now + 999) / 1000) : 0;
		}
	}
	*out = po;
}

bool mq_send_publish(struct mq_conn *c, const struct mq_out *o)
{
	struct mqtt_publish_out po;

	publish_out(c, o, &po);
	if (c->client_max_packet != 0 && mqtt_publish_size(c->version, &po) > c->client_max_packet)
		return false;
	if (mqtt_encode_publish(&c->w, c->version, &po) != 0)
		fatalx("out of memory");
	c->msgs_out++;
	c->ch->msgs_out++;
	if (o->qos == 0 && c->sess != NULL)
		c->sess->msgs_out++;
	if (c->sess != NULL)
		c->sess->last_msg_ms = time_now_ms();
	mq_conn_send(c);
	return true;
}

/* ---- dispatch ---- */

int mq_handle_packet(struct mq_conn *c, const uint8_t *pkt, size_t len)
{
	struct mqtt_packet p;
	struct mqtt_error err;

	if (c->state == MC_CONNECT) {
		if ((pkt[0] >> 4) != MQTT_CONNECT) {
			mq_conn_close(c, CHD_MQ_PROTOCOL, false, "the first packet is %s, not CONNECT",
			              mqtt_ptype_name(pkt[0] >> 4));
			return -1;
		}
		return handle_connect(c, pkt, len);
	}
	if (mqtt_decode(pkt, len, c->version, &p, &err) != 0) {
		mq_conn_abort(c, CHD_MQ_PROTOCOL, err.reason ? err.reason : MQTT_RC_MALFORMED,
		              "%s", err.text);
		return -1;
	}
	switch (p.type) {
	case MQTT_PUBLISH:
		return handle_publish(c, &p.u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		mq_sess_acked(c->sess, p.type, p.u.ack.pid);
		return 0;
	case MQTT_PUBREL:
		return handle_pubrel(c, p.u.ack.pid);
	case MQTT_SUBSCRIBE:
		return handle_subscribe(c, &p.u.subscribe);
	case MQTT_UNSUBSCRIBE:
		return handle_unsubscribe(c, &p.u.subscribe);
	case MQTT_PINGREQ:
		if (mqtt_encode_pingresp(&c->w) != 0)
			fatalx("out of memory");
		mq_conn_send(c);
		return 0;
	case MQTT_DISCONNECT:
		if (c->version == MQTT_V5 && (p.u.disconnect.props.present & MQTT_PB_SESSION_EXPIRY)) {
			uint32_t e = p.u.disconnect.props.session_expiry;
			if (c->sess->expiry_s == 0 && e != 0) {
				/* [MQTT-3.14.2-2] */
				mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "DISCONNECT sets "
				              "a session expiry on a session that had none");
				return -1;
			}
			c->sess->expiry_s = e == 0xFFFFFFFFu ? -1 : (int64_t)e;
			if (c->sess->persistent && e == 0) {
				mq_job_op(mq_lazy(), OP_SESS_DEL, c->sess->client_id);
				c->sess->persistent = false;
			}
		}
		{
			bool with_will = c->version == MQTT_V5 &&
			                 p.u.disconnect.reason == MQTT_RC_DISCONNECT_WITH_WILL;
			c->will_suppressed = !with_will;
			mq_conn_close(c, CHD_MQ_DISCONNECTED, with_will, "client sent DISCONNECT%s",
			              with_will ? " with will" : "");
		}
		return -1;
	case MQTT_CONNECT:
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "a second CONNECT");
		return -1;
	case MQTT_AUTH:
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
		              "AUTH without an authentication method");
		return -1;
	default:
		mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
		              "%s is not a packet a client sends", mqtt_ptype_name(p.type));
		return -1;
	}
}
