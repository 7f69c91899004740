/* The agent's optional Prometheus listener: GET /metrics (config
 * "metrics"), served by libmicrohttpd from its own polling thread, over
 * HTTPS when metrics.tls_label names a keystore label.
 *
 * The socket is bound by metrics_listen (before privileges are dropped)
 * and handed to MHD.  Bounded so that a stuck or hostile client costs
 * little and never touches a channel: MX_CONN_MAX connections in all,
 * MX_PER_IP from one address, MX_MEM bytes each (a larger request head
 * is answered 431 by MHD), closed after MX_IDLE_S seconds without
 * progress, one request per connection (Connection: close).  The text
 * comes from metrics_format(), the same as `chanctl status --format
 * prometheus`. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/channel.h"
#include "chand/cipherspec.h"
#include "chand/keystore.h"
#include "chand/log.h"
#include "chand/metrics.h"
#include "chand/netlisten.h"
#include "chand/util.h"

#define MX_CONN_MAX 16
#define MX_PER_IP 4
/* Per connection: the request head and MHD's bookkeeping (the response
 * body is allocated apart). */
#define MX_MEM 16384
#define MX_IDLE_S 5

#define MX_TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"
#define MX_TYPE_TEXT "text/plain; charset=utf-8"

static struct {
	struct MHD_Daemon *d;
	struct agent *a;
	int lfd;                 /* bound, until MHD takes it */
	/* Used only from MHD's polling thread (the one thread that calls
	 * mx_handle), then closed by metrics_stop after MHD stopped. */
	struct store *st;
} mx = { .lfd = -1 };

int metrics_listen(const struct chand_config *cfg, char *err, size_t errlen)
{
	char why[256];
	int fd;

	if (!cfg->metrics_enabled)
		return -2;
	fd = netlisten_open(cfg->metrics_address, cfg->metrics_port, 16, why, sizeof(why));
	if (fd < 0)
		snprintf(err, errlen, "metrics: %s", why);
	return fd;
}

/* The exposition text of the agent now (malloc'd), or NULL. */
static char *mx_render(struct store **st)
{
	struct chan_result r = { 0 };
	struct queue_def *qs = NULL;
	size_t nq = 0;
	json_t *status = NULL, *queues;
	char err[256];
	char *text = NULL;

	if (*st == NULL && agent_store_open(mx.a, st, err, sizeof(err)) != STORE_OK) {
		log_warn(code_str(CHD_DB_ERROR), "metrics: cannot open the database: %s", err);
		*st = NULL;
		return NULL;
	}
	if (chan_op_status(*st, "*", &status, &r) != 0) {
		log_warn(code_str(r.code), "metrics: status failed: %s", r.text);
		return NULL;
	}
	if (store_queue_list(*st, "*", &qs, &nq) != STORE_OK) {
		log_warn(code_str(CHD_DB_ERROR), "metrics: cannot list queues: %s", store_errmsg(*st));
		json_decref(status);
		return NULL;
	}
	queues = json_array();
	for (size_t i = 0; i < nq && queues != NULL; i++) {
		json_t *o = json_object();
		bool local = qs[i].type == QTYPE_LOCAL;
		json_object_set_new(o, "name", json_string(qs[i].name));
		json_object_set_new(o, "type", json_string(local ? "qlocal" : "qremote"));
		json_object_set_new(o, "curdepth", local ? json_integer(qs[i].curdepth) : json_null());
		json_array_append_new(queues, o);
	}
	free(qs);
	struct metrics_agent ag = { .qmgr = mx.a->cfg->qmgr, .version = CHAND_VERSION,
	                            .start_ms = mx.a->start_ms };
	text = metrics_format(status, queues, &ag);
	json_decref(status);
	json_decref(queues);
	return text;
}


static enum MHD_Result mx_reply(struct MHD_Connection *c, unsigned status, const char *type,
                                char *body, bool owned, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), body,
	                                    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES ||
	    (allow != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Every request, answered on its first call (the head is complete; a
 * body, which only refused methods have, is never read). HEAD gets the
 * headers of the GET answer: MHD leaves the body out. */
static enum MHD_Result mx_handle(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **req_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return mx_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, MX_TYPE_TEXT,
		                "405 Method Not Allowed\n", false, "GET, HEAD");
	/* url is the path: MHD took the query string off. */
	if (strcmp(url, "/metrics") != 0)
		return mx_reply(c, MHD_HTTP_NOT_FOUND, MX_TYPE_TEXT, "404 Not Found\n", false, NULL);
	char *text = mx_render(&mx.st);
	if (text == NULL)
		return mx_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MX_TYPE_TEXT,
		                "500 Internal Server Error\n", false, NULL);
	return mx_reply(c, MHD_HTTP_OK, MX_TYPE_PROM, text, true, NULL);
}

/* MHD's own complaints (bad requests, failed handshakes): debug lines,
 * a client's mistake is not the operator's business. */
static void mx_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("metrics: %s", line);
}

/* The PEM of label's certificate with its chain, and of its key, from
 * the agent's keystore. 0, or -1 with a one-line reason. */
static int mx_tls_pem(const struct chand_config *cfg, const char *label, gnutls_datum_t *cert,
                      gnutls_datum_t *key, enum chd_code_id *code, char *err, size_t errlen)
{
	struct ks_material *m = NULL;
	const struct ks_personal *p;
	char why[256];
	int rc = -1;

	cert->data = key->data = NULL;
	cert->size = key->size = 0;
	if (access(cfg->ks_path, F_OK) != 0) {
		*code = CHD_KS_OPEN;
		snprintf(err, errlen, "metrics.tls_label %s: keystore %s: %s", label, cfg->ks_path,
		         strerror(errno));
		return -1;
	}
	if (ks_material_load(cfg->ks_path, cfg->ks_stash, &m, code, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "metrics.tls_label %s: keystore %s: %s", label, cfg->ks_path, why);
		return -1;
	}
	p = ks_material_find(m, label);
	if (p == NULL || p->ncerts == 0 || p->key == NULL) {
		*code = CHD_KS_LABEL_MISSING;
		snprintf(err, errlen, "metrics.tls_label %s: no personal certificate with that label "
		         "in keystore %s", label, cfg->ks_path);
		goto out;
	}
	for (unsigned i = 0; i < p->ncerts; i++) {
		gnutls_datum_t one;
		if (gnutls_x509_crt_export2(p->certs[i], GNUTLS_X509_FMT_PEM, &one) != 0)
			goto export_failed;
		unsigned char *grown = gnutls_realloc(cert->data, cert->size + one.size + 1);
		if (grown == NULL) {
			gnutls_free(one.data);
			goto export_failed;
		}
		memcpy(grown + cert->size, one.data, one.size);
		cert->data = grown;
		cert->size += one.size;
		cert->data[cert->size] = '\0';
		gnutls_free(one.data);
	}
	if (gnutls_x509_privkey_export2(p->key, GNUTLS_X509_FMT_PEM, key) != 0)
		goto export_failed;
	rc = 0;
	goto out;
export_failed:
	*code = CHD_SYS_RESOURCE;
	snprintf(err, errlen, "metrics.tls_label %s: cannot export the certificate or key", label);
out:
	ks_material_free(m);
	if (rc != 0) {
		gnutls_free(cert->data);
		cert->data = NULL;
	}
	return rc;
}

int metrics_start(struct agent *a, int fd)
{
	const struct chand_config *cfg = a->cfg;
	const char *label = cfg->metrics_tls_label;
	bool tls = label[0] != '\0';
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	char name[NETLISTEN_NAME_MAX];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

	mx.a = a;
	mx.lfd = fd;
	netlisten_name(cfg->metrics_address, cfg->metrics_port, name, sizeof(name));
	if (tls) {
		enum chd_code_id code = CHD_KS_OPEN;
		char err[512];
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			log_error(code_str(CHD_METRICS_START), "metrics.tls_label %s: this libmicrohttpd "
			          "has no TLS support", label);
			return -1;
		}
		if (mx_tls_pem(cfg, label, &cert, &key, &code, err, sizeof(err)) != 0) {
			log_error(code_str(code), "%s", err);
			return -1;
		}
		flags |= MHD_USE_TLS;
	}
	/* The channels' ANY_TLS12_OR_HIGHER: TLS 1.2 or 1.3, AEAD suites. */
	const struct cipherspec *cs = cs_lookup("ANY_TLS12_OR_HIGHER");
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, cert.data },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, key.data },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)cs_priority(cs, true) },
		{ MHD_OPTION_END, 0, NULL },
	};
	mx.d = MHD_start_daemon(flags, 0, NULL, NULL, mx_handle, NULL,
	                        MHD_OPTION_EXTERNAL_LOGGER, mx_log, NULL,
	                        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MX_CONN_MAX,
	                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MX_PER_IP,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MX_MEM,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MX_IDLE_S,
	                        MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[3],
	                        MHD_OPTION_END);
	/* MHD loaded the key into its GnuTLS credentials while starting; our
	 * copy goes now. */
	if (key.data != NULL) {
		secure_zero(key.data, key.size);
		gnutls_free(key.data);
	}
	gnutls_free(cert.data);
	if (mx.d == NULL) {
		log_error(code_str(CHD_LISTEN_FAILED), "metrics: cannot serve on %s%s%s", name,
		          tls ? " with TLS label " : "", tls ? label : "");
		return -1;
	}
	mx.lfd = -1;              /* MHD's now: MHD_stop_daemon closes it */
	log_info(code_str(CHD_METRICS_START), "metrics=%s serving GET /metrics%s%s", name,
	         tls ? " over HTTPS label=" : "", tls ? label : "");
	return 0;
}

void metrics_stop(void)
{
	if (mx.d != NULL) {
		MHD_stop_daemon(mx.d);
		mx.d = NULL;
	}
	if (mx.st != NULL) {
		store_close(mx.st);
		mx.st = NULL;
	}
	if (mx.lfd >= 0)
		close(mx.lfd);
	mx.lfd = -1;
}

/* ---- the "agent info" admin command ---- */

static int cmd_agent_info(struct admin_conn *c, json_t *req)
{
	struct agent *a = admin_agent(c);

	(void)req;
	return admin_reply_ok(c, json_pack("{s:s,s:s,s:I,s:I}", "qmgr", a->cfg->qmgr, "version",
	                                   CHAND_VERSION, "pid", (json_int_t)getpid(),
	                                   "start_time_ms", (json_int_t)a->start_ms));
}

const struct admin_cmd metrics_admin_cmds[] = {
	{ "agent info", cmd_agent_info },
	{ NULL, NULL },
};
