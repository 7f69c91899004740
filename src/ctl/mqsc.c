/* MQSC scripts: parser, translation to chanctl commands, dump (mqsc.h).
 * Pure: no I/O, no global state. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqsc.h"

/* ---- growable buffers ---- */

/* A command being assembled from its lines: each byte remembers where it
 * was read, so errors and attributes carry their line and column. */
struct sbuf {
	char *s;
	int *ln, *cl;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, char c, int line, int col)
{
	if (b->oom)
		return;
	if (b->n + 1 >= b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 128;
		char *s = realloc(b->s, cap);
		if (s != NULL)
			b->s = s;
		int *ln = realloc(b->ln, cap * sizeof(int));
		if (ln != NULL)
			b->ln = ln;
		int *cl = realloc(b->cl, cap * sizeof(int));
		if (cl != NULL)
			b->cl = cl;
		if (s == NULL || ln == NULL || cl == NULL) {
			b->oom = true;
			return;
		}
		b->cap = cap;
	}
	b->s[b->n] = c;
	b->ln[b->n] = line;
	b->cl[b->n] = col;
	b->n++;
	b->s[b->n] = '\0';
}

static void sb_free(struct sbuf *b)
{
	free(b->s);
	free(b->ln);
	free(b->cl);
	memset(b, 0, sizeof(*b));
}

/* Plain text builder for the dump. */
struct tbuf {
	char *s;
	size_t n, cap;
	bool oom;
};

static void tb_put(struct tbuf *t, const char *s)
{
	size_t l = strlen(s);

	if (t->oom)
		return;
	if (t->n + l + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->n + l + 1)
			cap *= 2;
		char *p = realloc(t->s, cap);
		if (p == NULL) {
			t->oom = true;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	memcpy(t->s + t->n, s, l + 1);
	t->n += l;
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_kw_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* ---- parsing: one command's text into keywords and values ---- */

struct tok {
	const struct sbuf *b;
	size_t i;
	struct mqsc_cmd *cmd;
	bool oom;
};

static void tok_error(struct tok *t, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tok_error(struct tok *t, int line, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	if (t->cmd->error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->cmd->error = strdup(msg);
	t->cmd->error_line = line;
	if (t->cmd->error == NULL)
		t->oom = true;
}

static struct mqsc_param *add_param(struct tok *t)
{
	struct mqsc_cmd *c = t->cmd;
	struct mqsc_param *p = realloc(c->p, (c->np + 1) * sizeof(*p));

	if (p == NULL) {
		t->oom = true;
		return NULL;
	}
	c->p = p;
	memset(&p[c->np], 0, sizeof(p[0]));
	return &p[c->np++];
}

/* The value after '(' up to its matching ')'.  Unquoted text is folded
 * to upper case and may nest parentheses (CONNAME(host(1414)) as some
 * scripts write it); quoted text is kept, '' standing for one quote.
 * Unquoted blanks at either end are dropped. */
static int parse_value(struct tok *t, struct mqsc_param *p, int open_line)
{
	const struct sbuf *b = t->b;
	struct sbuf v = { 0 };
	bool *q = malloc(b->n + 1);
	int depth = 0, rc = -1;

	if (q == NULL) {
		t->oom = true;
		return -1;
	}
	for (;;) {
		if (t->i >= b->n) {
			tok_error(t, b->ln[b->n - 1], "missing ')' after the value of %s (opened on line %d)",
			          p->key, open_line);
			goto out;
		}
		char c = b->s[t->i];
		if (c == '\'') {
			int qline = b->ln[t->i];
			t->i++;
			p->quoted = true;
			for (;;) {
				if (t->i >= b->n) {
					tok_error(t, b->ln[b->n - 1], "unterminated quoted string in the value "
					          "of %s (opened on line %d)", p->key, qline);
					goto out;
				}
				if (b->s[t->i] == '\'') {
					if (t->i + 1 < b->n && b->s[t->i + 1] == '\'') {
						q[v.n] = true;
						sb_add(&v, '\'', 0, 0);
						t->i += 2;
						continue;
					}
					t->i++;
					break;
				}
				q[v.n] = true;
				sb_add(&v, b->s[t->i++], 0, 0);
			}
			continue;
		}
		if (c == ')' && depth == 0) {
			t->i++;
			break;
		}
		if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		else if (c == '\0') {
			tok_error(t, b->ln[t->i], "a NUL character in the value of %s", p->key);
			goto out;
		}
		q[v.n] = false;
		sb_add(&v, ascii_upper(c), 0, 0);
		t->i++;
	}
	if (v.oom) {
		t->oom = true;
		goto out;
	}
	size_t s = 0, e = v.n;
	while (s < e && !q[s] && is_blank(v.s[s]))
		s++;
	while (e > s && !q[e - 1] && is_blank(v.s[e - 1]))
		e--;
	p->value = dup_n(v.n ? v.s + s : "", e - s);
	if (p->value == NULL)
		t->oom = true;
	else
		rc = 0;
out:
	sb_free(&v);
	free(q);
	return rc;
}

static void tokenize(struct tok *t)
{
	const struct sbuf *b = t->b;

	while (!t->oom && t->cmd->error == NULL) {
		while (t->i < b->n && (is_blank(b->s[t->i]) || b->s[t->i] == ','))
			t->i++;
		if (t->i >= b->n)
			return;
		char c = b->s[t->i];
		if (!is_kw_char(c)) {
			char what[8];
			if (c == '(')
				tok_error(t, b->ln[t->i], "'(' without a keyword before it");
			else if (c == ')')
				tok_error(t, b->ln[t->i], "unexpected ')'");
			else if (c == '\'')
				tok_error(t, b->ln[t->i], "a quoted string must be the value of a keyword, "
				          "in parentheses");
			else {
				if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
					snprintf(what, sizeof(what), "\\x%02x", (unsigned char)c);
				else
					snprintf(what, sizeof(what), "%c", c);
				tok_error(t, b->ln[t->i], "unexpected character '%s'", what);
			}
			return;
		}
		size_t start = t->i;
		while (t->i < b->n && is_kw_char(b->s[t->i]))
			t->i++;
		struct mqsc_param *p = add_param(t);
		if (p == NULL)
			return;
		p->line = b->ln[start];
		p->col = b->cl[start];
		p->key = dup_n(b->s + start, t->i - start);
		if (p->key == NULL) {
			t->oom = true;
			return;
		}
		for (char *k = p->key; *k; k++)
			*k = ascii_upper(*k);
		size_t j = t->i;
		while (j < b->n && is_blank(b->s[j]))
			j++;
		if (j < b->n && b->s[j] == '(') {
			int open_line = b->ln[j];
			t->i = j + 1;
			if (parse_value(t, p, open_line) != 0)
				return;
		}
	}
}

/* ---- parsing: lines into commands ---- */

struct splitter {
	struct mqsc_script *out;
	struct sbuf cur;
	bool open;          /* a command continues on the next line */
	bool skip_lead;     /* '+': the next line's leading blanks are dropped */
	bool in_quote;
	int depth;
	bool oom;
};

static void emit(struct splitter *sp)
{
	struct sbuf *b = &sp->cur;
	size_t s = 0, e = b->n;

	if (b->oom) {
		sp->oom = true;
		return;
	}
	while (s < e && is_blank(b->s[s]))
		s++;
	while (e > s && is_blank(b->s[e - 1]))
		e--;
	if (s < e) {
		struct mqsc_cmd *v = realloc(sp->out->cmds, (sp->out->n + 1) * sizeof(*v));
		if (v == NULL) {
			sp->oom = true;
			return;
		}
		sp->out->cmds = v;
		struct mqsc_cmd *c = &v[sp->out->n++];
		memset(c, 0, sizeof(*c));
		c->line = b->ln[s];
		c->text = dup_n(b->s + s, e - s);
		struct tok t = { b, s, c, false };
		if (c->text == NULL)
			t.oom = true;
		else
			tokenize(&t);
		if (t.oom)
			sp->oom = true;
	}
	b->n = 0;
	sp->in_quote = false;
	sp->depth = 0;
	sp->open = false;
	sp->skip_lead = false;
}

static void split_line(struct splitter *sp, const char *s, size_t len, int line)
{
	size_t end = len, i = 0;
	char cont = 0;

	while (end > 0 && (is_blank(s[end - 1]) || s[end - 1] == '\r'))
		end--;
	if (!sp->open) {
		while (i < end && is_blank(s[i]))
			i++;
		if (i == end || s[i] == '*')
			return;          /* blank line or comment */
	} else if (sp->skip_lead) {
		while (i < end && is_blank(s[i]))
			i++;
	}
	if (end > i && (s[end - 1] == '+' || s[end - 1] == '-'))
		cont = s[--end];
	for (; i < end; i++) {
		char c = s[i];
		if (sp->in_quote) {
			if (c == '\'')
				sp->in_quote = false;   /* '' closes and reopens */
		} else if (c == '\'') {
			sp->in_quote = true;
		} else if (c == '(') {
			sp->depth++;
		} else if (c == ')') {
			if (sp->depth > 0)
				sp->depth--;
		} else if (c == ';' && sp->depth == 0) {
			emit(sp);
			while (i + 1 < end && is_blank(s[i + 1]))
				i++;
			continue;
		}
		sb_add(&sp->cur, c, line, (int)i + 1);
	}
	if (cont) {
		sp->open = true;
		sp->skip_lead = cont == '+';
	} else {
		emit(sp);
	}
}

int mqsc_parse(const char *text, size_t len, struct mqsc_script *out)
{
	struct splitter sp = { out, { 0 }, false, false, false, 0, false };
	size_t pos = 0;
	int line = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len && !sp.oom) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
		split_line(&sp, text + pos, l, ++line);
		pos += l + (nl ? 1 : 0);
	}
	if (sp.open && !sp.oom) {
		size_t before = out->n;
		emit(&sp);
		/* The script ended inside a continued command. */
		if (out->n > before && out->cmds[out->n - 1].error == NULL) {
			out->cmds[out->n - 1].error = strdup("the script ends after a continuation "
			                                     "character (+ or -)");
			out->cmds[out->n - 1].error_line = line;
			if (out->cmds[out->n - 1].error == NULL)
				sp.oom = true;
		}
	}
	sb_free(&sp.cur);
	if (sp.oom) {
		mqsc_script_free(out);
		return -1;
	}
	return 0;
}

void mqsc_script_free(struct mqsc_script *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct mqsc_cmd *c = &s->cmds[i];
		for (size_t j = 0; j < c->np; j++) {
			free(c->p[j].key);
			free(c->p[j].value);
		}
		free(c->p);
		free(c->text);
		free(c->error);
	}
	free(s->cmds);
	memset(s, 0, sizeof(*s));
}

/* ---- translation ---- */

enum akind {
	A_NUM,      /* digits, passed on */
	A_STR,      /* any text; blanks only (MQ's empty field) means "" */
	A_WORD,     /* one of words, passed on in lower case */
	A_CHECK,    /* one of words, nothing to pass: chand only does that */
	A_FLAG,     /* no value */
	A_FIELD,    /* DISPLAY: a column to show; chanctl shows them all */
	A_MAP,      /* one of words, given as pairs: the MQSC word, the chanctl value */
	A_PROTO,    /* PROTOCOL(MQTTV3,MQTTV311,MQTTV5): --protocol v31,v311,v5 */
	A_IGNORE,   /* accepted and ignored, with the note in opt (SSLKEYR) */
	A_OPTEQ,    /* any text, passed as one word "--opt=VALUE" (an optional value) */
	A_FIELDCHK, /* DISPLAY: a column without a value; with one, one of words
	               and only beside the attribute that honours it (AF_NEEDS_CLIENTID) */
	A_TOPIC,    /* an MQTT topic (filter) or prefix: any text kept exactly, and a
	               note when MQSC folded it to upper case (not quoted) */
};

#define AF_REQUIRED 1u
#define AF_NEEDS_CLIENTID 2u    /* given with a value, only together with CLIENTID */
#define AF_ONE_OF 4u            /* exactly one attribute of its group is required */
#define AF_NEEDS_QMNAME 8u      /* only together with QMNAME (routes to a queue manager) */

struct attr {
	const char *key;
	const char *opt;            /* chanctl option; NULL: nothing to pass */
	enum akind kind;
	const char *const *words;   /* A_WORD, A_CHECK: accepted values */
	unsigned flags;
	int group;                  /* at most one attribute of a group */
};

static const char *const w_usage[] = { "NORMAL", "XMITQ", NULL };
static const char *const w_enabled[] = { "ENABLED", "DISABLED", NULL };
static const char *const w_chltype[] = { "SDR", "RCVR", "SVR", "RQSTR", "MQTT", NULL };
static const char *const w_trptype[] = { "TCP", NULL };
static const char *const w_sslcauth[] = { "REQUIRED", "OPTIONAL", "NEVER", NULL };
/* Telemetry channels (doc/TELEMETRY.md). */
static const char *const w_mqtt[] = { "MQTT", NULL };
static const char *const w_yesno[] = { "YES", "NO", NULL };
static const char *const w_identity[] = { "CLIENTID", "USERNAME", "CERT-CN", "CERT-DN", NULL };
/* USECLTID(YES): the client id is the client's identity; NO: its MQTT
 * user name (IBM MQ then uses MCAUSER or the user name the client sent). */
static const char *const m_usecltid[] = { "YES", "clientid", "NO", "username", NULL };
static const char *const w_mode[] = { "QUIESCE", "FORCE", NULL };
static const char *const w_status[] = { "STOPPED", NULL };
static const char *const w_action[] = { "COMMIT", "BACKOUT", NULL };
static const char *const w_sectype[] = { "SSL", "ALL", NULL };
static const char *const w_qstype[] = { "QUEUE", NULL };
static const char *const w_qos[] = { "0", "1", "2", NULL };

#define NUM(k) { #k, "--" #k, A_NUM, NULL, 0, 0 }
#define STR(k) { #k, "--" #k, A_STR, NULL, 0, 0 }
#define FIELD(k) { #k, NULL, A_FIELD, NULL, 0, 0 }
#define END { NULL, NULL, A_FLAG, NULL, 0, 0 }
#define REPLACE_ATTRS \
	{ "REPLACE", "--replace", A_FLAG, NULL, 0, 1 }, { "NOREPLACE", NULL, A_FLAG, NULL, 0, 1 }

#define QLOCAL_ATTRS \
	NUM(MAXDEPTH), NUM(MAXMSGL), { "USAGE", "--usage", A_WORD, w_usage, 0, 0 }, \
	{ "PUT", "--put", A_WORD, w_enabled, 0, 0 }, { "GET", "--get", A_WORD, w_enabled, 0, 0 }, \
	STR(DESCR)
#define QREMOTE_ATTRS \
	STR(RNAME), STR(RQMNAME), STR(XMITQ), { "PUT", "--put", A_WORD, w_enabled, 0, 0 }, \
	STR(DESCR)
#define CHANNEL_ATTRS \
	{ "TRPTYPE", NULL, A_CHECK, w_trptype, 0, 0 }, STR(CONNAME), STR(XMITQ), STR(SSLCIPH), \
	STR(CERTLABL), { "SSLCAUTH", "--sslcauth", A_WORD, w_sslcauth, 0, 0 }, STR(SSLPEER), \
	NUM(BATCHSZ), NUM(BATCHINT), NUM(HBINT), NUM(DISCINT), NUM(MAXMSGL), NUM(SHORTRTY), \
	NUM(SHORTTMR), NUM(LONGRTY), NUM(LONGTMR), NUM(SEQWRAP), STR(DESCR), \
	{ "VERIFYHOST", "--verify-host", A_STR, NULL, 0, 0 }, \
	{ "KEYUPDATE", "--keyupdate-bytes", A_NUM, NULL, 0, 0 }, MQTT_ATTRS
/* KEYUPDATE(N) is chand's own: a TLS 1.3 KeyUpdate every N bytes (IBM MQ
 * has only the queue manager's SSLRKEYC, a TLS 1.2 renegotiation). */
/* CHLTYPE(MQTT): IBM MQ's PORT, LOCLADDR, PROTOCOL, USECLTID, MCAUSER and
 * SSLKEYR (the agent's keystore is used), then chand's own attributes,
 * named like chanctl's options (chanctl dump writes them). Whether an
 * attribute suits the channel type is chanctl's and the agent's to say. */
#define MQTT_ATTRS \
	NUM(PORT), { "LOCLADDR", "--address", A_STR, NULL, 0, 0 }, \
	{ "PROTOCOL", "--protocol", A_PROTO, NULL, 0, 0 }, \
	{ "USECLTID", "--identity", A_MAP, m_usecltid, 0, 3 }, STR(MCAUSER), \
	{ "SSLKEYR", "SSLKEYR is ignored: chand uses the agent's keystore (keystore.path in its " \
	  "configuration) for every channel", A_IGNORE, NULL, 0, 0 }, \
	{ "IDENTITY", "--identity", A_WORD, w_identity, 0, 3 }, \
	{ "PASSWORDFILE", "--password-file", A_STR, NULL, 0, 0 }, \
	{ "ACLFILE", "--acl-file", A_STR, NULL, 0, 0 }, \
	{ "ALLOWANONYMOUS", "--allow-anonymous", A_WORD, w_yesno, 0, 0 }, \
	{ "MAXCLIENTS", "--max-clients", A_NUM, NULL, 0, 0 }, \
	{ "MAXPACKET", "--max-packet", A_NUM, NULL, 0, 0 }, \
	{ "KEEPALIVEMAX", "--keepalive-max", A_NUM, NULL, 0, 0 }, \
	{ "SESSIONEXPIRYMAX", "--session-expiry-max", A_NUM, NULL, 0, 0 }
#define QUEUE_FIELDS \
	FIELD(ALL), FIELD(CURDEPTH), FIELD(MAXDEPTH), FIELD(MAXMSGL), FIELD(USAGE), FIELD(PUT), \
	FIELD(GET), FIELD(RNAME), FIELD(RQMNAME), FIELD(XMITQ), FIELD(DESCR)

static const struct attr a_define_qlocal[] = { QLOCAL_ATTRS, REPLACE_ATTRS, END };
static const struct attr a_alter_qlocal[] = { QLOCAL_ATTRS, END };
static const struct attr a_define_qremote[] = { QREMOTE_ATTRS, REPLACE_ATTRS, END };
static const struct attr a_alter_qremote[] = { QREMOTE_ATTRS, END };
static const struct attr a_delete_queue[] = {
	{ "PURGE", "--purge", A_FLAG, NULL, 0, 2 }, { "NOPURGE", NULL, A_FLAG, NULL, 0, 2 }, END };
static const struct attr a_define_channel[] = {
	{ "CHLTYPE", "--type", A_WORD, w_chltype, AF_REQUIRED, 0 }, CHANNEL_ATTRS, REPLACE_ATTRS,
	END };
static const struct attr a_alter_channel[] = {
	{ "CHLTYPE", "--type", A_WORD, w_chltype, 0, 0 }, CHANNEL_ATTRS, END };
static const struct attr a_none[] = { END };
static const struct attr a_display_queue[] = { QUEUE_FIELDS, END };
static const struct attr a_display_qstatus[] = {
	FIELD(ALL), FIELD(CURDEPTH), { "TYPE", NULL, A_CHECK, w_qstype, 0, 0 }, END };
static const struct attr a_display_channel[] = {
	FIELD(ALL), FIELD(CHLTYPE), FIELD(TRPTYPE), FIELD(CONNAME), FIELD(XMITQ), FIELD(SSLCIPH),
	FIELD(CERTLABL), FIELD(SSLCAUTH), FIELD(SSLPEER), FIELD(BATCHSZ), FIELD(BATCHINT),
	FIELD(HBINT), FIELD(DISCINT), FIELD(MAXMSGL), FIELD(SHORTRTY), FIELD(SHORTTMR),
	FIELD(LONGRTY), FIELD(LONGTMR), FIELD(SEQWRAP), FIELD(DESCR), FIELD(KEYUPDATE), FIELD(PORT),
	FIELD(LOCLADDR),
	FIELD(PROTOCOL), FIELD(USECLTID), FIELD(MCAUSER), END };
/* CHLTYPE(MQTT) CLIENTID(pattern): the clients of telemetry channels
 * (status --clients). */
static const struct attr a_display_chstatus[] = {
	{ "CHLTYPE", NULL, A_FIELDCHK, w_mqtt, AF_NEEDS_CLIENTID, 0 },
	{ "CLIENTID", "--clients", A_OPTEQ, NULL, 0, 0 },
	FIELD(ALL), FIELD(CURRENT), FIELD(STATUS), FIELD(SUBSTATE), FIELD(CONNAME),
	FIELD(RQMNAME), FIELD(XMITQ), FIELD(MSGS), FIELD(BATCHES), FIELD(BYTSSENT),
	FIELD(BYTSRCVD), FIELD(CURSEQNO), FIELD(LSTSEQNO), FIELD(INDOUBT), FIELD(SSLCIPH),
	FIELD(SSLPEER), FIELD(SSLCERTI), FIELD(CHSTADA), FIELD(CHSTATI), FIELD(LSTMSGDA),
	FIELD(LSTMSGTI), END };
static const struct attr a_stop_channel[] = {
	{ "MODE", "--mode", A_WORD, w_mode, 0, 0 }, { "STATUS", NULL, A_CHECK, w_status, 0, 0 },
	{ "CHLTYPE", NULL, A_CHECK, w_mqtt, 0, 0 }, { "CLIENTID", "--client", A_STR, NULL, 0, 0 },
	END };
/* IBM MQ names the type of a telemetry channel on START and DELETE. */
static const struct attr a_chltype_mqtt[] = { { "CHLTYPE", NULL, A_CHECK, w_mqtt, 0, 0 }, END };
static const struct attr a_reset_channel[] = { NUM(SEQNUM), END };
static const struct attr a_resolve_channel[] = {
	{ "ACTION", "--action", A_WORD, w_action, AF_REQUIRED, 0 }, END };
static const struct attr a_refresh_security[] = {
	{ "TYPE", NULL, A_CHECK, w_sectype, 0, 0 }, END };
/* Routes (doc/TELEMETRY.md) are chand's own objects: IBM MQ's nearest
 * are TOPIC and SUB objects, whose topic string is TOPICSTR.  QMNAME is
 * the queue manager the publications go to (the name IBM MQ uses for a
 * queue manager in its commands), QUEUE the queue they are put on.
 * RPREFIX and LPREFIX are Mosquitto's remote and local bridge prefixes. */
static const struct attr a_define_route[] = {
	{ "TOPICSTR", "--topic", A_TOPIC, NULL, AF_REQUIRED, 0 },
	{ "QUEUE", "--queue", A_STR, NULL, AF_ONE_OF, 4 },
	{ "QMNAME", "--qmgr", A_STR, NULL, AF_ONE_OF, 4 },
	{ "RPREFIX", "--remote-prefix", A_TOPIC, NULL, AF_NEEDS_QMNAME, 0 },
	{ "LPREFIX", "--local-prefix", A_TOPIC, NULL, AF_NEEDS_QMNAME, 0 },
	{ "QOSMIN", "--qos-min", A_WORD, w_qos, 0, 0 }, STR(DESCR), REPLACE_ATTRS, END };
static const struct attr a_display_route[] = {
	FIELD(ALL), FIELD(TOPICSTR), FIELD(QUEUE), FIELD(QMNAME), FIELD(RPREFIX), FIELD(LPREFIX),
	FIELD(QOSMIN), FIELD(DESCR), END };

#define F_NO_NAME 1u        /* REFRESH SECURITY */
/* START CHANNEL returns once the agent accepts, as runmqsc's does: a
 * script of many starts must not wait for each channel in turn. */
#define F_NO_WAIT 2u

struct form {
	const char *verb, *obj;
	const char *words;      /* the chanctl command */
	const struct attr *attrs;
	unsigned flags;
};

static const struct form forms[] = {
	{ "DEFINE", "QLOCAL", "define qlocal", a_define_qlocal, 0 },
	{ "DEFINE", "QREMOTE", "define qremote", a_define_qremote, 0 },
	{ "ALTER", "QLOCAL", "alter qlocal", a_alter_qlocal, 0 },
	{ "ALTER", "QREMOTE", "alter qremote", a_alter_qremote, 0 },
	{ "DELETE", "QLOCAL", "delete queue", a_delete_queue, 0 },
	{ "DELETE", "QREMOTE", "delete queue", a_delete_queue, 0 },
	{ "DELETE", "QUEUE", "delete queue", a_delete_queue, 0 },
	{ "DISPLAY", "QLOCAL", "display queue", a_display_queue, 0 },
	{ "DISPLAY", "QREMOTE", "display queue", a_display_queue, 0 },
	{ "DISPLAY", "QUEUE", "display queue", a_display_queue, 0 },
	{ "DISPLAY", "QSTATUS", "display queue", a_display_qstatus, 0 },
	{ "DEFINE", "CHANNEL", "define channel", a_define_channel, 0 },
	{ "ALTER", "CHANNEL", "alter channel", a_alter_channel, 0 },
	{ "DELETE", "CHANNEL", "delete channel", a_chltype_mqtt, 0 },
	{ "DISPLAY", "CHANNEL", "display channel", a_display_channel, 0 },
	{ "DISPLAY", "CHSTATUS", "status", a_display_chstatus, 0 },
	{ "START", "CHANNEL", "start channel", a_chltype_mqtt, F_NO_WAIT },
	{ "STOP", "CHANNEL", "stop channel", a_stop_channel, 0 },
	{ "PING", "CHANNEL", "ping channel", a_none, 0 },
	{ "RESET", "CHANNEL", "reset channel", a_reset_channel, 0 },
	{ "RESOLVE", "CHANNEL", "resolve channel", a_resolve_channel, 0 },
	{ "REFRESH", "SECURITY", "refresh security", a_refresh_security, F_NO_NAME },
	{ "DEFINE", "ROUTE", "define route", a_define_route, 0 },
	{ "DELETE", "ROUTE", "delete route", a_none, 0 },
	{ "DISPLAY", "ROUTE", "display route", a_display_route, 0 },
};

/* MQSC's short forms of verbs and object types. */
static const char *const synonyms[][2] = {
	{ "DEF", "DEFINE" }, { "ALT", "ALTER" }, { "DEL", "DELETE" }, { "DIS", "DISPLAY" },
	{ "STA", "START" }, { "REF", "REFRESH" }, { "QL", "QLOCAL" }, { "QR", "QREMOTE" },
	{ "Q", "QUEUE" }, { "CHL", "CHANNEL" }, { "CHS", "CHSTATUS" }, { "QS", "QSTATUS" },
};

static const char *canon(const char *k)
{
	for (size_t i = 0; i < sizeof(synonyms) / sizeof(synonyms[0]); i++)
		if (strcmp(synonyms[i][0], k) == 0)
			return synonyms[i][1];
	return k;
}

/* "DEFINE CHANNEL(TO.QM2)": how error messages name the command. */
static void head(const struct mqsc_cmd *c, char *buf, size_t len)
{
	if (c->np == 0)
		snprintf(buf, len, "%.60s", c->text ? c->text : "");
	else if (c->np == 1 || c->p[1].value == NULL)
		snprintf(buf, len, "%s%s%s", c->p[0].key, c->np > 1 ? " " : "",
		         c->np > 1 ? c->p[1].key : "");
	else
		snprintf(buf, len, "%s %s(%.60s)", c->p[0].key, c->p[1].key, c->p[1].value);
}

static int fail(const struct mqsc_cmd *c, int line, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(const struct mqsc_cmd *c, int line, char *err, size_t errlen, const char *fmt, ...)
{
	char h[160], msg[400];
	va_list ap;

	head(c, h, sizeof(h));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %d: %s: %s", line, h, msg);
	return -1;
}

static int argv_push(struct mqsc_argv *a, const char *s, size_t n)
{
	char **v = realloc(a->v, (size_t)(a->n + 2) * sizeof(*v));

	if (v == NULL)
		return -1;
	a->v = v;
	if ((v[a->n] = dup_n(s, n)) == NULL)
		return -1;
	v[++a->n] = NULL;
	return 0;
}

static int argv_push_str(struct mqsc_argv *a, const char *s)
{
	return argv_push(a, s, strlen(s));
}

/* chanctl's options and words are lower case; the tables spell them as
 * MQSC does. */
static int push_lower(struct mqsc_argv *a, const char *s)
{
	size_t n = strlen(s);
	char *w = dup_n(s, n);
	int rc;

	if (w == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		w[i] = ascii_lower(w[i]);
	rc = argv_push_str(a, w);
	free(w);
	return rc;
}

static bool all_blank(const char *s)
{
	while (is_blank(*s))
		s++;
	return *s == '\0';
}

/* Quoted values keep their case; USAGE('xmitq') still means XMITQ. */
static int word_index(const char *const *words, const char *v)
{
	for (int i = 0; words[i] != NULL; i++) {
		size_t j = 0;
		while (words[i][j] != '\0' && words[i][j] == ascii_upper(v[j]))
			j++;
		if (words[i][j] == '\0' && v[j] == '\0')
			return i;
	}
	return -1;
}

static void word_list(const char *const *words, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; words[i] != NULL && off < len; i++) {
		int r = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", words[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
}

/* Appends "line N: text" to the translation's notes (A_IGNORE). */
static int add_note(struct mqsc_argv *out, const struct mqsc_cmd *c, const struct mqsc_param *p,
                    const char *text)
{
	size_t old = out->note ? strlen(out->note) : 0, n = old + strlen(text) + 32;
	char *s = realloc(out->note, n);

	(void)c;
	if (s == NULL)
		return -2;
	snprintf(s + old, n - old, "%sline %d: %s", old ? "\n" : "", p->line, text);
	out->note = s;
	return 0;
}

/* PROTOCOL(MQTTV311,MQTTV3): IBM MQ's words, and MQTTV5 for MQTT 5.0
 * (chand's v31, v311, v5 are accepted too), into --protocol v311,v31. */
static int translate_protocol(const struct mqsc_cmd *c, const struct mqsc_param *p,
                              struct mqsc_argv *out, char *err, size_t errlen)
{
	static const char *const mq[] = { "MQTTV3", "MQTTV311", "MQTTV5", NULL };
	static const char *const ours[] = { "V31", "V311", "V5", NULL };
	static const char *const val[] = { "v31", "v311", "v5" };
	char list[32] = "", item[64];
	const char *v = p->value;
	bool seen[3] = { false, false, false };

	for (;;) {
		size_t n = strcspn(v, ","), s = 0, e = n;
		while (s < e && is_blank(v[s]))
			s++;
		while (e > s && is_blank(v[e - 1]))
			e--;
		if (e - s >= sizeof(item))
			e = s + sizeof(item) - 1;
		memcpy(item, v + s, e - s);
		item[e - s] = '\0';
		int k = word_index(mq, item);
		if (k < 0)
			k = word_index(ours, item);
		if (k < 0)
			return fail(c, p->line, err, errlen, "value %.60s of PROTOCOL is not supported "
			            "(supported: MQTTV3, MQTTV311, MQTTV5)", item[0] ? item : "''");
		if (seen[k])
			return fail(c, p->line, err, errlen, "PROTOCOL names %s twice", mq[k]);
		seen[k] = true;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? "," : "",
		         val[k]);
		if (v[n] == '\0')
			break;
		v += n + 1;
	}
	return argv_push_str(out, "--protocol") != 0 || argv_push_str(out, list) != 0 ? -2 : 0;
}

/* TOPICSTR('spBv1.0/#'): MQTT topics are case sensitive, and MQSC folds
 * an unquoted value to upper case before anyone sees it.  The folded
 * value is what runs (as runmqsc would), with a note saying so.  The
 * text is kept exactly: ' ' is a topic, not MQ's empty field. */
static int translate_topic(const struct mqsc_cmd *c, const struct mqsc_param *p,
                           const struct attr *at, struct mqsc_argv *out)
{
	char note[300];

	if (!p->quoted && strpbrk(p->value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL) {
		snprintf(note, sizeof(note), "%s(%.200s) is not quoted, so it was folded to upper "
		         "case; quote it to keep lower-case letters", p->key, p->value);
		if (add_note(out, c, p, note) != 0)
			return -2;
	}
	return argv_push_str(out, at->opt) != 0 || argv_push_str(out, p->value) != 0 ? -2 : 0;
}

/* Checks one attribute and appends its chanctl option, if any. */
static int translate_attr(const struct mqsc_cmd *c, const struct mqsc_param *p,
                          const struct attr *at, struct mqsc_argv *out, char *err, size_t errlen)
{
	char list[200];
	const char *v = p->value;

	if (at->kind == A_FIELDCHK && v != NULL) {
		if (word_index(at->words, v) < 0) {
			word_list(at->words, list, sizeof(list));
			return fail(c, p->line, err, errlen, "value %.60s of %s is not supported "
			            "(supported: %s)", v, p->key, list);
		}
		return 0;
	}
	if (at->kind == A_FLAG || at->kind == A_FIELD || at->kind == A_FIELDCHK) {
		if (v != NULL && at->kind == A_FLAG)
			return fail(c, p->line, err, errlen, "attribute %s takes no value", p->key);
		if (v != NULL)
			return fail(c, p->line, err, errlen, "%s(...) would filter the listing, which is "
			            "not supported; the listing shows every object whose name matches",
			            p->key);
		return at->opt != NULL && push_lower(out, at->opt) != 0 ? -2 : 0;
	}
	if (v == NULL)
		return fail(c, p->line, err, errlen, "attribute %s needs a value in parentheses", p->key);
	if (at->kind == A_NUM) {
		size_t n = strlen(v);
		/* The range is chanctl's to check, with the option's own limits. */
		if (n == 0 || strspn(v, "0123456789") != n)
			return fail(c, p->line, err, errlen, "%s(%s) is not a number", p->key, v);
	}
	if (at->kind == A_IGNORE)
		return add_note(out, c, p, at->opt);
	if (at->kind == A_TOPIC)
		return translate_topic(c, p, at, out);
	if (at->kind == A_PROTO)
		return translate_protocol(c, p, out, err, errlen);
	if (at->kind == A_OPTEQ) {
		char *w = malloc(strlen(at->opt) + strlen(v) + 2);
		int rc;
		if (w == NULL)
			return -2;
		sprintf(w, "%s=%s", at->opt, v);
		rc = argv_push_str(out, w);
		free(w);
		return rc != 0 ? -2 : 0;
	}
	if (at->kind == A_MAP) {
		for (int i = 0; at->words[i] != NULL; i += 2)
			if (word_index(at->words + i, v) == 0) {
				if (argv_push_str(out, at->opt) != 0 || argv_push_str(out, at->words[i + 1]))
					return -2;
				return 0;
			}
		list[0] = '\0';
		for (int i = 0; at->words[i] != NULL; i += 2)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			         at->words[i]);
		return fail(c, p->line, err, errlen, "value %.60s of %s is not supported (supported: "
		            "%s)", v, p->key, list);
	}
	if (at->kind == A_WORD || at->kind == A_CHECK) {
		if (word_index(at->words, v) < 0) {
			word_list(at->words, list, sizeof(list));
			return fail(c, p->line, err, errlen, "value %.60s of %s is not supported "
			            "(supported: %s)", v, p->key, list);
		}
	}
	if (at->opt == NULL)
		return 0;
	if (push_lower(out, at->opt) != 0)
		return -2;
	if (at->kind == A_WORD)
		return push_lower(out, v) != 0 ? -2 : 0;
	/* MQ fields are blank-padded: ' ' is how scripts clear one. */
	return argv_push_str(out, all_blank(v) ? "" : v) != 0 ? -2 : 0;
}

int mqsc_translate(const struct mqsc_cmd *c, struct mqsc_argv *out, char *err, size_t errlen)
{
	const struct form *f = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (c->error != NULL)
		return fail(c, c->error_line, err, errlen, "%s", c->error);
	if (c->np == 0)
		return fail(c, c->line, err, errlen, "empty command");
	const struct mqsc_param *verb = &c->p[0];
	if (verb->value != NULL)
		return fail(c, verb->line, err, errlen, "%s is a command and takes no value",
		            verb->key);
	const char *vn = canon(verb->key), *on = c->np > 1 ? canon(c->p[1].key) : NULL;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strcmp(forms[i].verb, vn) == 0 && on != NULL && strcmp(forms[i].obj, on) == 0)
			f = &forms[i];
	if (f == NULL) {
		if (on == NULL)
			return fail(c, verb->line, err, errlen, "command %s is not supported", vn);
		return fail(c, verb->line, err, errlen, "command %s %s is not supported", vn, on);
	}
	const struct mqsc_param *obj = &c->p[1];
	if (f->flags & F_NO_NAME) {
		if (obj->value != NULL)
			return fail(c, obj->line, err, errlen, "%s takes no value", obj->key);
	} else if (obj->value == NULL || all_blank(obj->value)) {
		return fail(c, obj->line, err, errlen, "%s needs a name in parentheses: %s(name)",
		            obj->key, obj->key);
	} else if (obj->value[0] == '-') {
		/* It would read as an option of the chanctl command. */
		return fail(c, obj->line, err, errlen, "'%s' is not a valid name", obj->value);
	}

	/* Every attribute must be known, given once, and exclusive ones alone. */
	const struct attr *seen[64] = { NULL };
	size_t nseen = 0;
	for (size_t i = 2; i < c->np; i++) {
		const struct mqsc_param *p = &c->p[i];
		const struct attr *at = NULL;
		for (const struct attr *a = f->attrs; a->key != NULL; a++)
			if (strcmp(a->key, p->key) == 0)
				at = a;
		if (at == NULL)
			return fail(c, p->line, err, errlen, "attribute %s is not supported", p->key);
		for (size_t j = 0; j < nseen; j++) {
			if (seen[j] == at)
				return fail(c, p->line, err, errlen, "attribute %s is given twice", p->key);
			if (at->group != 0 && seen[j]->group == at->group)
				return fail(c, p->line, err, errlen, "%s and %s exclude each other",
				            seen[j]->key, p->key);
		}
		if (nseen < sizeof(seen) / sizeof(seen[0]))
			seen[nseen++] = at;
		else
			return fail(c, p->line, err, errlen, "too many attributes");
	}
	for (const struct attr *a = f->attrs; a->key != NULL; a++) {
		bool given = false, with = false;
		if (!(a->flags & AF_NEEDS_CLIENTID))
			continue;
		for (size_t i = 2; i < c->np; i++)
			if (strcmp(c->p[i].key, a->key) == 0 && c->p[i].value != NULL)
				given = true;
		for (size_t j = 0; j < nseen; j++)
			with |= strcmp(seen[j]->key, "CLIENTID") == 0;
		/* The listing would not be limited to that type: refused, not
		 * quietly widened. */
		if (given && !with)
			return fail(c, c->line, err, errlen, "%s(...) would filter the listing, which is "
			            "supported only with CLIENTID(...) (the clients of telemetry channels)",
			            a->key);
	}
	for (const struct attr *a = f->attrs; a->key != NULL; a++) {
		bool given = false;
		if (!(a->flags & AF_REQUIRED))
			continue;
		for (size_t j = 0; j < nseen; j++)
			given |= seen[j] == a;
		if (!given)
			return fail(c, c->line, err, errlen, "attribute %s is required", a->key);
	}
	for (const struct attr *a = f->attrs; a->key != NULL; a++) {
		bool given = false;
		char names[200] = "";
		if (!(a->flags & AF_ONE_OF))
			continue;
		for (size_t j = 0; j < nseen; j++)
			given |= seen[j]->group == a->group;
		if (given)
			continue;
		/* "QUEUE and QMNAME": the group's members, in the table's order. */
		for (const struct attr *b = a; b->key != NULL; b++)
			if ((b->flags & AF_ONE_OF) && b->group == a->group)
				snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				         names[0] ? " and " : "", b->key);
		return fail(c, c->line, err, errlen, "one of %s is required", names);
	}
	for (size_t j = 0; j < nseen; j++) {
		bool with = false;
		if (!(seen[j]->flags & AF_NEEDS_QMNAME))
			continue;
		for (size_t k = 0; k < nseen; k++)
			with |= strcmp(seen[k]->key, "QMNAME") == 0;
		if (!with) {
			const struct mqsc_param *p = NULL;
			for (size_t i = 2; i < c->np && p == NULL; i++)
				if (strcmp(c->p[i].key, seen[j]->key) == 0)
					p = &c->p[i];
			return fail(c, p != NULL ? p->line : c->line, err, errlen, "%s applies to routes "
			            "to a queue manager (QMNAME), not to routes to a queue", seen[j]->key);
		}
	}

	/* The chanctl words, the name, then the options in the script's order. */
	const char *w = f->words;
	while (*w != '\0') {
		size_t n = strcspn(w, " ");
		if (argv_push(out, w, n) != 0)
			goto oom;
		w += n;
		while (*w == ' ')
			w++;
	}
	if (!(f->flags & F_NO_NAME) && argv_push_str(out, obj->value) != 0)
		goto oom;
	if ((f->flags & F_NO_WAIT) && argv_push_str(out, "--no-wait") != 0)
		goto oom;
	for (size_t i = 2; i < c->np; i++) {
		const struct attr *at = NULL;
		for (const struct attr *a = f->attrs; a->key != NULL; a++)
			if (strcmp(a->key, c->p[i].key) == 0)
				at = a;
		rc = translate_attr(c, &c->p[i], at, out, err, errlen);
		if (rc == -2)
			goto oom;
		if (rc != 0) {
			mqsc_argv_free(out);
			return -1;
		}
	}
	return 0;
oom:
	mqsc_argv_free(out);
	snprintf(err, errlen, "line %d: out of memory", c->line);
	return -1;
}

void mqsc_argv_free(struct mqsc_argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	free(a->note);
	memset(a, 0, sizeof(*a));
}

/* ---- dump ---- */

char *mqsc_quote(const char *s)
{
	size_t n = 2;
	char *q, *d;

	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
		n += *p == '\'' ? 2 : 1;
	}
	if ((q = malloc(n + 1)) == NULL)
		return NULL;
	d = q;
	*d++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			*d++ = '\'';
		*d++ = *p;
	}
	*d++ = '\'';
	*d = '\0';
	return q;
}

enum dkind {
	D_STR, D_NUM, D_WORD, D_SKIP,
	D_OPTSTR,   /* a string, left out when empty (not set) */
	D_OPTNUM,   /* a number, left out when 0 (not set) */
	D_BOOL,     /* true/false as YES/NO */
	D_PROTO,    /* "v311,v5" as MQTTV311,MQTTV5 */
	D_IDENT,    /* clientid as USECLTID(YES), the others as IDENTITY(...) */
};

struct dkey {
	const char *key;        /* JSON key */
	const char *mqsc;       /* MQSC keyword, NULL for D_SKIP */
	enum dkind kind;
};

/* In the order the DEFINE lists them.  Keys that describe state, not
 * definition, are skipped; any key not listed makes the dump fail. */
static const struct dkey queue_keys[] = {
	{ "usage", "USAGE", D_WORD }, { "maxdepth", "MAXDEPTH", D_NUM },
	{ "maxmsgl", "MAXMSGL", D_NUM }, { "rname", "RNAME", D_STR },
	{ "rqmname", "RQMNAME", D_STR }, { "xmitq", "XMITQ", D_STR }, { "put", "PUT", D_WORD },
	{ "get", "GET", D_WORD }, { "descr", "DESCR", D_STR },
	{ "name", NULL, D_SKIP }, { "type", NULL, D_SKIP }, { "curdepth", NULL, D_SKIP },
	{ "oldest_put_time", NULL, D_SKIP }, { "created", NULL, D_SKIP },
	{ "altered", NULL, D_SKIP }, { NULL, NULL, D_SKIP },
};

static const struct dkey channel_keys[] = {
	{ "type", "CHLTYPE", D_WORD }, { "conname", "CONNAME", D_STR }, { "xmitq", "XMITQ", D_STR },
	{ "sslciph", "SSLCIPH", D_STR }, { "certlabl", "CERTLABL", D_STR },
	{ "sslcauth", "SSLCAUTH", D_WORD }, { "sslpeer", "SSLPEER", D_STR },
	{ "batchsz", "BATCHSZ", D_NUM }, { "batchint", "BATCHINT", D_NUM },
	{ "hbint", "HBINT", D_NUM }, { "discint", "DISCINT", D_NUM },
	{ "maxmsgl", "MAXMSGL", D_NUM }, { "shortrty", "SHORTRTY", D_NUM },
	{ "shorttmr", "SHORTTMR", D_NUM }, { "longrty", "LONGRTY", D_NUM },
	{ "longtmr", "LONGTMR", D_NUM }, { "seqwrap", "SEQWRAP", D_NUM },
	{ "descr", "DESCR", D_STR }, { "verify_host", "VERIFYHOST", D_OPTSTR },
	{ "keyupdate_bytes", "KEYUPDATE", D_OPTNUM }, { "name", NULL, D_SKIP },
	/* Attributes of telemetry channels only, which no message channel can
	 * set: nothing is lost by leaving them out. */
	{ "port", NULL, D_SKIP }, { "address", NULL, D_SKIP }, { "protocol", NULL, D_SKIP },
	{ "identity", NULL, D_SKIP }, { "mcauser", NULL, D_SKIP },
	{ "password_file", NULL, D_SKIP }, { "acl_file", NULL, D_SKIP },
	{ "allow_anonymous", NULL, D_SKIP }, { "max_clients", NULL, D_SKIP },
	{ "max_packet", NULL, D_SKIP }, { "keepalive_max", NULL, D_SKIP },
	{ "session_expiry_max", NULL, D_SKIP }, { NULL, NULL, D_SKIP },
};

/* Telemetry channels (CHLTYPE(MQTT)): IBM MQ's attributes first, then
 * chand's own (MQTT_ATTRS in the translation reads them back). */
static const struct dkey mqtt_keys[] = {
	{ "type", "CHLTYPE", D_WORD }, { "port", "PORT", D_NUM }, { "address", "LOCLADDR", D_STR },
	{ "protocol", "PROTOCOL", D_PROTO }, { "sslciph", "SSLCIPH", D_STR },
	{ "certlabl", "CERTLABL", D_STR }, { "sslcauth", "SSLCAUTH", D_WORD },
	{ "sslpeer", "SSLPEER", D_STR }, { "identity", "IDENTITY", D_IDENT },
	{ "mcauser", "MCAUSER", D_STR }, { "descr", "DESCR", D_STR },
	{ "password_file", "PASSWORDFILE", D_STR }, { "acl_file", "ACLFILE", D_STR },
	{ "allow_anonymous", "ALLOWANONYMOUS", D_BOOL }, { "max_clients", "MAXCLIENTS", D_NUM },
	{ "max_packet", "MAXPACKET", D_NUM }, { "keepalive_max", "KEEPALIVEMAX", D_NUM },
	{ "session_expiry_max", "SESSIONEXPIRYMAX", D_NUM }, { "name", NULL, D_SKIP },
	/* Attributes of message channels only, which a telemetry channel
	 * cannot set. */
	{ "conname", NULL, D_SKIP }, { "xmitq", NULL, D_SKIP }, { "batchsz", NULL, D_SKIP },
	{ "batchint", NULL, D_SKIP }, { "hbint", NULL, D_SKIP }, { "discint", NULL, D_SKIP },
	{ "maxmsgl", NULL, D_SKIP }, { "shortrty", NULL, D_SKIP }, { "shorttmr", NULL, D_SKIP },
	{ "longrty", NULL, D_SKIP }, { "longtmr", NULL, D_SKIP }, { "seqwrap", NULL, D_SKIP },
	{ "verify_host", NULL, D_SKIP }, { "keyupdate_bytes", NULL, D_SKIP },
	{ NULL, NULL, D_SKIP },
};

/* Routes: their definition; the counters are state.  A route has a queue
 * or a queue manager, and prefixes only with the latter: display gives
 * the others as "", which would not define again. */
static const struct dkey route_keys[] = {
	{ "topic", "TOPICSTR", D_STR }, { "queue", "QUEUE", D_OPTSTR },
	{ "qmgr", "QMNAME", D_OPTSTR }, { "remote_prefix", "RPREFIX", D_OPTSTR },
	{ "local_prefix", "LPREFIX", D_OPTSTR }, { "qos_min", "QOSMIN", D_NUM },
	{ "descr", "DESCR", D_STR }, { "name", NULL, D_SKIP }, { "matched", NULL, D_SKIP },
	{ "forwarded", NULL, D_SKIP }, { "dropped", NULL, D_SKIP },
	{ "loops_prevented", NULL, D_SKIP }, { "last_drop_reason", NULL, D_SKIP },
	{ NULL, NULL, D_SKIP },
};

/* "v311,v5" as "MQTTV311,MQTTV5" in t; false if a word is unknown. */
static bool dump_protocol(struct tbuf *t, const char *v)
{
	static const char *const ours[] = { "v31", "v311", "v5" };
	static const char *const mq[] = { "MQTTV3", "MQTTV311", "MQTTV5" };
	bool first = true;

	for (;;) {
		size_t n = strcspn(v, ","), k = 0;
		while (k < 3 && !(strlen(ours[k]) == n && strncmp(ours[k], v, n) == 0))
			k++;
		if (k == 3 || n == 0)
			return false;
		if (!first)
			tb_put(t, ",");
		tb_put(t, mq[k]);
		first = false;
		if (v[n] == '\0')
			return true;
		v += n + 1;
	}
}

static char *dump_object(const json_t *o, const char *objkw, const struct dkey *keys,
                         const char *extra, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *k;
	json_t *v;
	struct tbuf t = { 0 };
	char *q, num[32];

	if (!json_is_object(o) || name == NULL) {
		snprintf(err, errlen, "an object without a name in the listing");
		return NULL;
	}
	json_object_foreach((json_t *)o, k, v) {
		const struct dkey *d = keys;
		while (d->key != NULL && strcmp(d->key, k) != 0)
			d++;
		if (d->key == NULL) {
			snprintf(err, errlen, "%s %s has an attribute '%s' that chanctl dump does not know; "
			         "refusing to write an incomplete dump", objkw, name, k);
			return NULL;
		}
	}
	if ((q = mqsc_quote(name)) == NULL) {
		snprintf(err, errlen, "%s name cannot be written in MQSC", objkw);
		return NULL;
	}
	if (keys == mqtt_keys) {
		/* Readers who know IBM MQ should not look these up there. */
		static const char *const ours[] = { "identity", "password_file", "acl_file",
			"allow_anonymous", "max_clients", "max_packet", "keepalive_max",
			"session_expiry_max", NULL };
		bool any = false;
		for (int i = 0; ours[i] != NULL; i++) {
			const json_t *x = json_object_get(o, ours[i]);
			any |= x != NULL && !json_is_null(x) &&
			       !(json_is_string(x) && strcmp(json_string_value(x), "clientid") == 0);
		}
		if (any)
			tb_put(&t, "* IDENTITY, PASSWORDFILE, ACLFILE, ALLOWANONYMOUS, MAXCLIENTS, MAXPACKET,\n"
			       "* KEEPALIVEMAX and SESSIONEXPIRYMAX are chand's own attributes of\n"
			       "* telemetry channels: IBM MQ has no such attributes.\n");
	}
	if (keys == channel_keys && json_integer_value(json_object_get(o, "keyupdate_bytes")) != 0)
		tb_put(&t, "* KEYUPDATE (a TLS 1.3 KeyUpdate every N bytes) is chand's own attribute:\n"
		       "* IBM MQ has no such attribute.\n");
	tb_put(&t, "DEFINE ");
	tb_put(&t, objkw);
	tb_put(&t, "(");
	tb_put(&t, q);
	tb_put(&t, ")");
	free(q);
	for (const struct dkey *d = keys; d->key != NULL; d++) {
		json_t *val = json_object_get(o, d->key);
		if (d->kind == D_SKIP || val == NULL || json_is_null(val))
			continue;
		if (d->kind == D_OPTSTR && json_is_string(val) && json_string_value(val)[0] == '\0')
			continue;
		if (d->kind == D_OPTNUM && json_is_integer(val) && json_integer_value(val) == 0)
			continue;
		tb_put(&t, " +\n   ");
		if (d->kind == D_IDENT && json_is_string(val) &&
		    strcmp(json_string_value(val), "clientid") == 0) {
			/* IBM MQ's own spelling of this one. */
			tb_put(&t, "USECLTID(YES)");
			continue;
		}
		tb_put(&t, d->mqsc);
		tb_put(&t, "(");
		if (d->kind == D_BOOL && json_is_boolean(val)) {
			tb_put(&t, json_is_true(val) ? "YES" : "NO");
		} else if (d->kind == D_PROTO && json_is_string(val)) {
			if (!dump_protocol(&t, json_string_value(val))) {
				free(t.s);
				snprintf(err, errlen, "%s %s: protocol '%s' is not a list of v31, v311, v5",
				         objkw, name, json_string_value(val));
				return NULL;
			}
		} else if ((d->kind == D_NUM || d->kind == D_OPTNUM) && json_is_integer(val)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
			tb_put(&t, num);
		} else if ((d->kind == D_WORD || d->kind == D_IDENT) && json_is_string(val)) {
			const char *s = json_string_value(val);
			for (size_t i = 0; s[i] != '\0'; i++) {
				char c[2] = { ascii_upper(s[i]), '\0' };
				/* cert-cn: a '-' inside the parentheses is no continuation. */
				if (!is_kw_char(c[0]) && !(c[0] == '-' && i > 0 && s[i + 1] != '\0')) {
					free(t.s);
					snprintf(err, errlen, "%s %s: %s '%s' is not a keyword", objkw, name,
					         d->key, s);
					return NULL;
				}
				tb_put(&t, c);
			}
		} else if ((d->kind == D_STR || d->kind == D_OPTSTR) && json_is_string(val)) {
			if ((q = mqsc_quote(json_string_value(val))) == NULL) {
				free(t.s);
				snprintf(err, errlen, "%s %s: %s holds a control character MQSC cannot carry",
				         objkw, name, d->key);
				return NULL;
			}
			tb_put(&t, q);
			free(q);
		} else {
			free(t.s);
			snprintf(err, errlen, "%s %s: %s has an unexpected JSON type", objkw, name, d->key);
			return NULL;
		}
		tb_put(&t, ")");
		if (extra != NULL && strcmp(d->key, "type") == 0) {
			tb_put(&t, " +\n   ");
			tb_put(&t, extra);
		}
	}
	tb_put(&t, " +\n   REPLACE\n");
	if (t.oom) {
		free(t.s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return t.s;
}

char *mqsc_dump_queue(const json_t *q, char *err, size_t errlen)
{
	const char *type = json_string_value(json_object_get(q, "type"));

	if (type != NULL && strcmp(type, "qlocal") == 0)
		return dump_object(q, "QLOCAL", queue_keys, NULL, err, errlen);
	if (type != NULL && strcmp(type, "qremote") == 0)
		return dump_object(q, "QREMOTE", queue_keys, NULL, err, errlen);
	snprintf(err, errlen, "queue %s has type '%s', which chanctl dump does not know",
	         json_string_value(json_object_get(q, "name")) ? json_string_value(
	         json_object_get(q, "name")) : "?", type ? type : "?");
	return NULL;
}

char *mqsc_dump_channel(const json_t *ch, char *err, size_t errlen)
{
	const char *type = json_string_value(json_object_get(ch, "type"));

	if (type != NULL && strcmp(type, "mqtt") == 0)
		return dump_object(ch, "CHANNEL", mqtt_keys, "TRPTYPE(TCP)", err, errlen);
	return dump_object(ch, "CHANNEL", channel_keys, "TRPTYPE(TCP)", err, errlen);
}

char *mqsc_dump_route(const json_t *r, char *err, size_t errlen)
{
	return dump_object(r, "ROUTE", route_keys, NULL, err, errlen);
}
