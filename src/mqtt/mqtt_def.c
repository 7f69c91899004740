/* Telemetry channel definitions: attributes, defaults, ranges, JSON form
 * (include/chand/mqtt.h).  Pure: no I/O, no global state. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/cipherspec.h"
#include "chand/dnfilter.h"
#include "chand/mqtt.h"

static int def_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int def_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void mqtt_def_init(struct mqtt_def *d, const char *name)
{
	memset(d, 0, sizeof *d);
	str_copy(d->name, name, sizeof d->name);
	d->port = 1883;
	d->protocols = MQTT_PROTO_ALL;
	d->sslcauth = SSLCAUTH_OPTIONAL;
	d->identity = MQTT_ID_CLIENTID;
	d->allow_anonymous = -1;
	d->max_clients = MQTT_DEF_MAX_CLIENTS;
	d->max_packet = MQTT_DEF_MAX_PACKET;
	d->keepalive_max = MQTT_DEF_KEEPALIVE_MAX;
	d->session_expiry_max = MQTT_DEF_SESSION_EXPIRY_MAX;
}

const char *mqtt_identity_name(enum mqtt_identity id)
{
	switch (id) {
	case MQTT_ID_USERNAME: return "username";
	case MQTT_ID_CERT_CN: return "cert-cn";
	case MQTT_ID_CERT_DN: return "cert-dn";
	default: return "clientid";
	}
}

const char *mqtt_sslcauth_name(int a)
{
	return a == SSLCAUTH_NEVER ? "never" : a == SSLCAUTH_OPTIONAL ? "optional" : "required";
}

void mqtt_protocols_text(unsigned p, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", p & MQTT_PROTO_V31 ? "v31" : "",
	         (p & MQTT_PROTO_V31) && (p & (MQTT_PROTO_V311 | MQTT_PROTO_V5)) ? "," : "",
	         p & MQTT_PROTO_V311 ? "v311" : "",
	         (p & MQTT_PROTO_V311) && (p & MQTT_PROTO_V5) ? "," : "", p & MQTT_PROTO_V5 ? "v5" : "");
}

bool mqtt_def_allow_anonymous(const struct mqtt_def *d)
{
	if (d->allow_anonymous >= 0)
		return d->allow_anonymous != 0;
	return d->password_file[0] == '\0';
}

static int parse_protocols(const char *s, unsigned *out, char *err, size_t errlen)
{
	char buf[64], *save = NULL, *tok;
	unsigned p = 0;

	if (strlen(s) >= sizeof buf)
		return def_err(err, errlen, "PROTOCOL '%s' is too long", s);
	str_copy(buf, s, sizeof buf);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (strcasecmp(tok, "v31") == 0 || strcasecmp(tok, "mqttv3") == 0)
			p |= MQTT_PROTO_V31;
		else if (strcasecmp(tok, "v311") == 0 || strcasecmp(tok, "mqttv311") == 0)
			p |= MQTT_PROTO_V311;
		else if (strcasecmp(tok, "v5") == 0 || strcasecmp(tok, "mqttv5") == 0)
			p |= MQTT_PROTO_V5;
		else
			return def_err(err, errlen, "PROTOCOL: unknown version '%s' (use v31, v311, v5)", tok);
	}
	if (p == 0)
		return def_err(err, errlen, "PROTOCOL names no version (use v31, v311, v5)");
	*out = p;
	return 0;
}

/* Attributes of message channels only: refused on a telemetry channel. */
static const char *const msg_only[] = { "conname", "xmitq", "batchsz", "batchint", "hbint",
	"discint", "maxmsgl", "shortrty", "shorttmr", "longrty", "longtmr", "seqwrap", "verify_host",
	"keyupdate_bytes", NULL };

struct num_attr {
	const char *key;
	long long min, max;
	size_t off;
	bool is_ll;
};

static const struct num_attr num_attrs[] = {
	{ "port", 1, 65535, offsetof(struct mqtt_def, port), false },
	{ "max_clients", 1, 1000000, offsetof(struct mqtt_def, max_clients), false },
	{ "max_packet", 16, 268435455, offsetof(struct mqtt_def, max_packet), false },
	{ "keepalive_max", 0, 65535, offsetof(struct mqtt_def, keepalive_max), false },
	{ "session_expiry_max", 0, 4294967295LL, offsetof(struct mqtt_def, session_expiry_max), true },
};

struct str_attr {
	const char *key;
	size_t off, size;
};

static const struct str_attr str_attrs[] = {
	{ "address", offsetof(struct mqtt_def, address), MQTT_ADDR_MAX + 1 },
	{ "sslciph", offsetof(struct mqtt_def, sslciph), 64 },
	{ "certlabl", offsetof(struct mqtt_def, certlabl), KS_LABEL_MAX + 1 },
	{ "sslpeer", offsetof(struct mqtt_def, sslpeer), DNF_MAX_LEN + 1 },
	{ "mcauser", offsetof(struct mqtt_def, mcauser), MQTT_USER_MAX + 1 },
	{ "password_file", offsetof(struct mqtt_def, password_file), MQTT_PATH_MAX + 1 },
	{ "acl_file", offsetof(struct mqtt_def, acl_file), MQTT_PATH_MAX + 1 },
	{ "descr", offsetof(struct mqtt_def, descr), 65 },
};

int mqtt_def_apply_json(struct mqtt_def *d, const json_t *o, char *err, size_t errlen)
{
	const json_t *v;
	char *base = (char *)d;

	for (size_t i = 0; msg_only[i] != NULL; i++)
		if (json_object_get(o, msg_only[i]) != NULL)
			return def_err(err, errlen, "%s does not apply to a telemetry channel (type mqtt)",
			               msg_only[i]);
	if ((v = json_object_get(o, "type")) != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), "mqtt") != 0))
		return def_err(err, errlen, "TYPE of a telemetry channel cannot change");
	for (size_t i = 0; i < sizeof num_attrs / sizeof num_attrs[0]; i++) {
		const struct num_attr *a = &num_attrs[i];
		json_int_t n;

		if ((v = json_object_get(o, a->key)) == NULL)
			continue;
		if (!json_is_integer(v))
			return def_err(err, errlen, "%s must be an integer", a->key);
		n = json_integer_value(v);
		if (n < a->min || n > a->max)
			return def_err(err, errlen, "%s %lld is out of range (%lld-%lld)", a->key,
			               (long long)n, a->min, a->max);
		if (a->is_ll)
			*(long long *)(void *)(base + a->off) = (long long)n;
		else
			*(long *)(void *)(base + a->off) = (long)n;
	}
	for (size_t i = 0; i < sizeof str_attrs / sizeof str_attrs[0]; i++) {
		const struct str_attr *a = &str_attrs[i];
		const char *s;

		if ((v = json_object_get(o, a->key)) == NULL)
			continue;
		if (!json_is_string(v))
			return def_err(err, errlen, "%s must be a string", a->key);
		s = json_string_value(v);
		if (strlen(s) >= a->size)
			return def_err(err, errlen, "%s is too long (at most %zu characters)", a->key,
			               a->size - 1);
		str_copy(base + a->off, s, a->size);
	}
	if ((v = json_object_get(o, "protocol")) != NULL) {
		if (!json_is_string(v))
			return def_err(err, errlen, "protocol must be a string");
		if (parse_protocols(json_string_value(v), &d->protocols, err, errlen) != 0)
			return -1;
	}
	if ((v = json_object_get(o, "sslcauth")) != NULL) {
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(s, "never") == 0)
			d->sslcauth = SSLCAUTH_NEVER;
		else if (strcasecmp(s, "optional") == 0)
			d->sslcauth = SSLCAUTH_OPTIONAL;
		else if (strcasecmp(s, "required") == 0)
			d->sslcauth = SSLCAUTH_REQUIRED;
		else
			return def_err(err, errlen, "SSLCAUTH must be never, optional or required");
	}
	if ((v = json_object_get(o, "identity")) != NULL) {
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(s, "clientid") == 0)
			d->identity = MQTT_ID_CLIENTID;
		else if (strcasecmp(s, "username") == 0)
			d->identity = MQTT_ID_USERNAME;
		else if (strcasecmp(s, "cert-cn") == 0)
			d->identity = MQTT_ID_CERT_CN;
		else if (strcasecmp(s, "cert-dn") == 0)
			d->identity = MQTT_ID_CERT_DN;
		else
			return def_err(err, errlen,
			               "identity must be clientid, username, cert-cn or cert-dn");
	}
	if ((v = json_object_get(o, "allow_anonymous")) != NULL) {
		if (json_is_boolean(v))
			d->allow_anonymous = json_is_true(v) ? 1 : 0;
		else if (json_is_null(v))
			d->allow_anonymous = -1;
		else
			return def_err(err, errlen, "allow_anonymous must be true or false");
	}
	return 0;
}

int mqtt_def_validate(const struct mqtt_def *d, char *err, size_t errlen)
{
	char why[300];
	unsigned char addr[16];
	struct dnf_filter *f = NULL;
	size_t pos = 0;

	if (!name_valid(d->name, why, sizeof why))
		return def_err(err, errlen, "invalid channel name: %s", why);
	if (d->address[0] != '\0' && inet_pton(AF_INET, d->address, addr) != 1 &&
	    inet_pton(AF_INET6, d->address, addr) != 1)
		return def_err(err, errlen, "address '%s' is not a numeric IPv4 or IPv6 address",
		               d->address);
	if (d->sslciph[0] != '\0' && cs_check(d->sslciph, why, sizeof why) != 0)
		return def_err(err, errlen, "%s", why);
	if (d->sslpeer[0] != '\0') {
		if (dnf_parse(d->sslpeer, &f, &pos, why, sizeof why) != 0)
			return def_err(err, errlen, "SSLPEER: %s", why);
		dnf_free(f);
		if (d->sslciph[0] == '\0')
			return def_err(err, errlen, "SSLPEER needs TLS: set SSLCIPH");
		if (d->sslcauth == SSLCAUTH_NEVER)
			return def_err(err, errlen, "SSLPEER needs a client certificate: SSLCAUTH(NEVER) "
			               "does not ask for one");
	}
	if ((d->identity == MQTT_ID_CERT_CN || d->identity == MQTT_ID_CERT_DN) &&
	    (d->sslciph[0] == '\0' || d->sslcauth == SSLCAUTH_NEVER))
		return def_err(err, errlen, "identity %s needs client certificates: set SSLCIPH and "
		               "SSLCAUTH optional or required", mqtt_identity_name(d->identity));
	if (d->identity == MQTT_ID_USERNAME && d->password_file[0] == '\0' &&
	    d->mcauser[0] == '\0' && d->allow_anonymous == 0)
		return def_err(err, errlen, "identity username with allow_anonymous no needs a "
		               "password file (--password-file)");
	if (d->password_file[0] != '\0' && d->password_file[0] != '/')
		return def_err(err, errlen, "password_file must be an absolute path");
	if (d->acl_file[0] != '\0' && d->acl_file[0] != '/')
		return def_err(err, errlen, "acl_file must be an absolute path");
	return 0;
}

json_t *mqtt_def_to_json(const struct mqtt_def *d)
{
	char protos[32];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	mqtt_protocols_text(d->protocols, protos, sizeof protos);
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "type", json_string("mqtt"));
	json_object_set_new(o, "address", json_string(d->address));
	json_object_set_new(o, "port", json_integer(d->port));
	json_object_set_new(o, "protocol", json_string(protos));
	json_object_set_new(o, "sslciph", json_string(d->sslciph));
	json_object_set_new(o, "certlabl", json_string(d->certlabl));
	json_object_set_new(o, "sslcauth", json_string(mqtt_sslcauth_name(d->sslcauth)));
	json_object_set_new(o, "sslpeer", json_string(d->sslpeer));
	json_object_set_new(o, "identity", json_string(mqtt_identity_name(d->identity)));
	json_object_set_new(o, "mcauser", json_string(d->mcauser));
	json_object_set_new(o, "password_file", json_string(d->password_file));
	json_object_set_new(o, "acl_file", json_string(d->acl_file));
	if (d->allow_anonymous >= 0)
		json_object_set_new(o, "allow_anonymous", json_boolean(d->allow_anonymous));
	else
		json_object_set_new(o, "allow_anonymous", json_null());
	json_object_set_new(o, "max_clients", json_integer(d->max_clients));
	json_object_set_new(o, "max_packet", json_integer(d->max_packet));
	json_object_set_new(o, "keepalive_max", json_integer(d->keepalive_max));
	json_object_set_new(o, "session_expiry_max", json_integer((json_int_t)d->session_expiry_max));
	json_object_set_new(o, "descr", json_string(d->descr));
	return o;
}

int mqtt_def_from_text(struct mqtt_def *d, const char *name, const char *text, char *err,
                       size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	char why[512];
	int rc;

	if (o == NULL)
		return def_err(err, errlen, "channel %s: stored definition is not JSON: %s", name,
		               je.text);
	mqtt_def_init(d, name);
	json_object_del(o, "name");
	rc = mqtt_def_apply_json(d, o, why, sizeof why);
	json_decref(o);
	if (rc != 0)
		return def_err(err, errlen, "channel %s: stored definition is invalid: %s", name, why);
	return 0;
}
