/* Routes (doc/TELEMETRY.md): MQTT publications carried between queue
 * managers by the message channels, with real MQTT clients at both ends
 * (Paho Python v5 through tests/integ/mqtt_client.py).
 *
 * Every agent here ("site") serves a telemetry channel with the seed 001
 * broker certificate (clients trust seed001/ca.pem) and talks to the other
 * sites over SDR/RCVR channels, mutual TLS with SSLPEER (the test PKI's
 * qm1/qm2 certificates) or plain TCP for the three-agent mesh.
 *
 * Exactly-once tests hold the system in the state they need instead of
 * racing it: the channel is stopped so publications wait on the XMITQ, the
 * subscriber is frozen (SIGSTOP) so they wait in its session, connections
 * are cut after planned byte counts or frozen by tcpproxy; then an agent is
 * killed, restarted, and everything is counted (duplicates and gaps
 * printed). Pass or fail never depends on how fast the machine is; where a
 * kill lands is logged, not asserted. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "mqtt_helpers.h"
#include "tcpproxy.h"

#define NSITES 3
static struct mqtt_broker site[NSITES];
static struct tcpproxy *proxy;

static void teardown(void)
{
	tcpproxy_stop(proxy);
	proxy = NULL;
	for (int i = 0; i < NSITES; i++)
		mqtt_broker_finish(&site[i]);
}

/* One timeout per suite (see test_chan_crash.c): it bounds every test. */
TestSuite(mqtt_routes, .fini = teardown, .timeout = 170);

#define ROUTE_Q "SYSTEM.MQTT.PUBLISH"
#define TELE "MQTT"

/* ---- sites ---- */

/* An agent with the test PKI's certificate under label (the keystore's
 * default, for message channels), the seed 001 broker certificate under
 * "broker" (the telemetry channel's), a DLQ, and a started telemetry
 * channel (clients without certificates accepted). */
static void site_start(struct mqtt_broker *b, const char *qmgr, const struct chan_qm_opts *o)
{
	memset(b, 0, sizeof(*b));
	b->seed = MQTT_SEED001;
	char *w = th_tempdir("mroute");
	cr_assert_not_null(w);
	snprintf(b->work, sizeof(b->work), "%s", w);
	free(w);
	chan_qm_prepare(&b->qm, qmgr, o);
	snprintf(b->cafile, sizeof(b->cafile), "%s", mqtt_seed("seed001/ca.pem"));
	chan_ks_ok("trust -k '%s' --label seedca --cert '%s'", b->qm.ks, b->cafile);
	chan_ks_ok("import -k '%s' --label %s --cert '%s' --key '%s' --key-password-file '%s'",
	           b->qm.ks, MQTT_LABEL, mqtt_seed("seed001/server.pem"),
	           mqtt_seed("seed001/server.key"), mqtt_seed("pw.txt"));
	chan_qm_launch(&b->qm, o);
	free(chan_ctl_ok(&b->qm, NULL, "define qlocal DLQ --maxdepth 100000"));
	mqtt_channel_start(b, TELE, "--sslcauth optional");
}

/* QM1 and QM2 (certificates qm1 / qm2, so CN=QM1 / CN=QM2). */
static void pair_start(void)
{
	site_start(&site[0], "QM1", NULL);
	site_start(&site[1], "QM2", NULL);
}

/* The transmission queue named like to's queue manager on from, and the
 * channel FROM.TO.TO (SDR on from, RCVR on to), initiator's CONNAME
 * 127.0.0.1:port (0: to's listener). Mutual TLS with SSLPEER at both ends
 * when tls. Not started. */
static void link_sites(struct mqtt_broker *from, struct mqtt_broker *to, int port, bool tls,
                       const char *more)
{
	char name[120], s[400], r[300];

	snprintf(name, sizeof(name), "%s.TO.%s", from->qm.name, to->qm.name);
	free(chan_ctl_ok(&from->qm, NULL, "define qlocal %s --usage xmitq --maxdepth 200000 --replace",
	                 to->qm.name));
	if (tls) {
		snprintf(s, sizeof(s), CHAN_TLS " --sslpeer 'CN=%s' --shortrty 100 --shorttmr 1 %s",
		         to->qm.name, more ? more : "");
		snprintf(r, sizeof(r), CHAN_TLS " --sslcauth required --sslpeer 'CN=%s'",
		         from->qm.name);
	} else {
		snprintf(s, sizeof(s), "--shortrty 100 --shorttmr 1 %s", more ? more : "");
		r[0] = '\0';
	}
	chan_define(&from->qm, &to->qm, name, CHAN_SDR_RCVR, to->qm.name, port, s, r);
}

static void start_link(struct mqtt_broker *from, struct mqtt_broker *to)
{
	char name[120];

	snprintf(name, sizeof(name), "%s.TO.%s", from->qm.name, to->qm.name);
	free(chan_ctl_ok(&from->qm, NULL, "start channel %s", name));
	if (!chan_wait_state(&from->qm, name, "RUNNING", 20000)) {
		chan_dump(&from->qm, name);
		chan_dump(&to->qm, name);
		cr_assert_fail("channel %s does not run", name);
	}
}

static void dump_sites(void)
{
	for (int i = 0; i < NSITES; i++)
		if (site[i].qm.a.pid > 0)
			chan_dump(&site[i].qm, NULL);
}

/* ---- clients ---- */

/* mqtt_client.py sub in the background; waits for its SUBACK (or its
 * CONNACK with --no-subscribe). */
static void py_sub(struct mqtt_broker *b, struct mqtt_bg *bg, const char *args)
{
	mqtt_bg_start(b, bg, "exec %s sub %s %s", mqtt_py(), mqtt_pyconn(b), args);
	const char *want = strstr(args, "--no-subscribe") ? "CONNACK rc=0" : "SUBACK";
	if (!mqtt_bg_wait(bg, want, 20000)) {
		mqtt_bg_dump(bg, "subscriber");
		mqtt_dump(b);
		cr_assert_fail("subscriber %s: no %s", args, want);
	}
}

/* Lines of the client's output that start with "PUBACK " / "PUBREC " and
 * carry a non-zero reason code. */
static int refused_acks(const char *out)
{
	int n = 0;

	for (const char *p = out; p != NULL && *p != '\0';) {
		int mid, rc;
		if ((sscanf(p, "PUBACK mid=%d rc=%d", &mid, &rc) == 2 ||
		     sscanf(p, "PUBREC mid=%d rc=%d", &mid, &rc) == 2) && rc != 0)
			n++;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return n;
}

/* Publishes "PREFIX-nnnnn" for from .. from+n-1 on topic from a Paho v5
 * client at site b (extra: more options); every one must be acknowledged
 * (reason code 0) before it returns. */
static void pub_range(struct mqtt_broker *b, const char *topic, const char *prefix, int from,
                      int n, int qos, const char *extra)
{
	char *msgs = NULL, *out = NULL, *err = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msgs, &len);

	cr_assert_not_null(f);
	for (int i = from; i < from + n; i++)
		fprintf(f, " --message %s-%05d", prefix, i);
	fclose(f);
	int rc = mqtt_run(&out, &err, 90, "%s pub %s --qos %d --topic '%s' --timeout 60 %s%s",
	                  mqtt_py(), mqtt_pyconn(b), qos, topic, extra ? extra : "", msgs);
	free(msgs);
	int acked = out ? th_count(out, "PUBLISHED mid=") : 0;
	if (rc != 0 || (qos > 0 && acked != n) || refused_acks(out ? out : "") > 0) {
		mqtt_dump(b);
		cr_assert_fail("publishing %s-%05d..%05d (QoS %d) at %s: exit %d, %d acknowledged, "
		               "%d refused\n%.3000s\n%.2000s", prefix, from, from + n - 1, qos,
		               b->qm.name, rc, acked, refused_acks(out ? out : ""), out ? out : "",
		               err ? err : "");
	}
	free(out);
	free(err);
}

/* Waits until the subscriber's output holds line; fails otherwise. */
static void expect_line(struct mqtt_bg *bg, const char *line)
{
	if (!mqtt_bg_wait(bg, line, 20000)) {
		mqtt_bg_dump(bg, "subscriber");
		dump_sites();
		cr_assert_fail("the subscriber did not receive '%s'", line);
	}
}

/* ---- counting ---- */

/* What a subscriber received of PREFIX-00000 .. PREFIX-(n-1) on topic:
 * copies of each, how many repeats came with the DUP flag, and other
 * payloads on that topic (foreign). */
struct tally {
	int n, got, dups, dup_flagged, missing, foreign;
	int out_of_order;       /* first copies that came after a higher number */
	int *count;
	char report[1200];
};

static void tally_free(struct tally *t)
{
	free(t->count);
	t->count = NULL;
}

static void tally_msgs(const char *text, const char *topic, const char *prefix, int n,
                       struct tally *t)
{
	char head[200];
	size_t hl = (size_t)snprintf(head, sizeof(head), "MSG %s %s-", topic, prefix);

	int highest = -1;

	memset(t, 0, sizeof(*t));
	t->n = n;
	t->count = calloc((size_t)n, sizeof(int));
	cr_assert_not_null(t->count);
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, head, hl) == 0) {
			int k = -1, qos, retain, dup;
			if (sscanf(p + hl, "%d qos=%d retain=%d dup=%d", &k, &qos, &retain, &dup) == 4 &&
			    k >= 0 && k < n) {
				t->got++;
				if (t->count[k]++ > 0) {
					t->dups++;
					t->dup_flagged += dup;
				} else if (k < highest) {
					t->out_of_order++;
				} else {
					highest = k;
				}
			} else {
				t->foreign++;
			}
		} else if (strncmp(p, head, hl - strlen(prefix) - 1) == 0) {
			t->foreign++;   /* same topic, another payload */
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	size_t o = 0;
	o += (size_t)snprintf(t->report + o, sizeof(t->report) - o, "duplicated:");
	for (int k = 0; k < n && o < sizeof(t->report) - 200; k++)
		if (t->count[k] > 1)
			o += (size_t)snprintf(t->report + o, sizeof(t->report) - o, " %d(x%d)", k,
			                      t->count[k]);
	o += (size_t)snprintf(t->report + o, sizeof(t->report) - o, "; missing:");
	for (int k = 0; k < n; k++) {
		if (t->count[k] != 0)
			continue;
		t->missing++;
		if (o < sizeof(t->report) - 20)
			o += (size_t)snprintf(t->report + o, sizeof(t->report) - o, " %d", k);
	}
}

/* Bodies PREFIX-nnnnn of the messages on queue at q: each of 0..n-1
 * exactly once (and nothing else). */
static void check_queue_once(struct chan_qm *q, const char *queue, const char *prefix, int n)
{
	json_t *msgs = chan_get_msgs(q, queue);
	int *seen = calloc((size_t)n, sizeof(int)), dups = 0, missing = 0, foreign = 0;
	size_t pl = strlen(prefix);

	cr_assert_not_null(seen);
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		const char *body = chan_js(json_array_get(msgs, i), "body");
		int k = -1;
		if (strncmp(body, prefix, pl) == 0 && body[pl] == '-')
			k = atoi(body + pl + 1);
		if (k < 0 || k >= n) {
			foreign++;
			continue;
		}
		if (seen[k]++ > 0)
			dups++;
	}
	for (int k = 0; k < n; k++)
		missing += seen[k] == 0;
	free(seen);
	size_t got = json_array_size(msgs);
	json_decref(msgs);
	cr_assert(dups == 0 && missing == 0 && foreign == 0,
	          "%s at %s: %zu messages for %d: %d duplicates, %d missing, %d unexpected", queue,
	          q->name, got, n, dups, missing, foreign);
}

/* Waits until every transmission queue and SYSTEM.MQTT.PUBLISH of the
 * running sites is empty. */
static bool wait_drained(int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		bool busy = false;
		for (int i = 0; i < NSITES && !busy; i++) {
			if (site[i].qm.a.pid <= 0)
				continue;
			busy = chan_depth(&site[i].qm, ROUTE_Q) > 0;
			for (int j = 0; j < NSITES && !busy; j++)
				if (j != i && site[j].qm.name[0] != '\0')
					busy = chan_depth(&site[i].qm, site[j].qm.name) > 0;
		}
		if (!busy)
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(100);
	}
}

/* ---- routes ---- */

/* The record of route name from `--json display route NAME`, or NULL
 * (display of a name that is not defined fails). */
static json_t *route_get(struct mqtt_broker *b, const char *name)
{
	char *out = NULL, *err = NULL;

	if (chan_ctl(&b->qm, NULL, &out, &err, "--json display route %s", name) != 0) {
		free(out);
		free(err);
		return NULL;
	}
	free(err);
	json_error_t je;
	json_t *arr = json_loads(out ? out : "", JSON_DECODE_ANY, &je), *rec = NULL, *o;
	size_t i;

	cr_assert_not_null(arr, "display route --json is not JSON: %s", out);
	json_array_foreach(arr, i, o) {
		if (strcmp(chan_js(o, "name"), name) == 0)
			rec = json_incref(o);
	}
	json_decref(arr);
	free(out);
	return rec;
}

static long long route_counter(struct mqtt_broker *b, const char *name, const char *key)
{
	json_t *r = route_get(b, name);
	long long v = r ? chan_ji(r, key) : -1;

	json_decref(r);
	return v;
}

/* ---- 1. QoS 0/1/2 across two agents ---- */

Test(mqtt_routes, qos012_reach_remote_and_local_subscribers)
{
	struct mqtt_bg rsub, rsub1, lsub;
	char line[300];

	pair_start();
	link_sites(&site[0], &site[1], 0, true, NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "define route SPB.OUT --topic 'spBv1.0/#' --qmgr QM2 "
	                 "--descr 'Sparkplug to the centre'"));
	start_link(&site[0], &site[1]);
	py_sub(&site[1], &rsub, "--id R.SUB2 --qos 2 --topic 'spBv1.0/#' --timeout 100");
	py_sub(&site[1], &rsub1, "--id R.SUB1 --qos 1 --topic 'spBv1.0/#' --timeout 100");
	py_sub(&site[0], &lsub, "--id L.SUB --qos 2 --topic 'spBv1.0/#' --timeout 100");

	for (int q = 0; q <= 2; q++) {
		char topic[64], extra[200];
		snprintf(topic, sizeof(topic), "spBv1.0/G/NDATA/E%d", q);
		snprintf(extra, sizeof(extra), "--user-prop site=edge1 --user-prop seq=%d", q);
		pub_range(&site[0], topic, "m", q, 1, q, extra);
		snprintf(line, sizeof(line), "MSG %s m-%05d qos=%d retain=0 dup=0", topic, q, q);
		expect_line(&rsub, line);
		expect_line(&lsub, line);
		/* The MQTT 5 user properties travelled with it. */
		snprintf(line, sizeof(line), "PROPS %s m-%05d site=edge1 seq=%d", topic, q, q);
		expect_line(&rsub, line);
		expect_line(&lsub, line);
		/* A subscriber granted QoS 1 gets QoS 2 publications at QoS 1. */
		snprintf(line, sizeof(line), "MSG %s m-%05d qos=%d retain=0 dup=0", topic, q,
		         q < 1 ? q : 1);
		expect_line(&rsub1, line);
	}
	/* A retained publication: a subscriber that arrives at QM2 later gets
	 * it from QM2's retained store, retain flag set. */
	pub_range(&site[0], "spBv1.0/G/STATE/E", "online", 0, 1, 1, "--retain");
	expect_line(&rsub, "MSG spBv1.0/G/STATE/E online-00000 qos=1 ");
	char *out = mqtt_run_ok(30, "%s sub %s --id LATE --qos 2 --topic 'spBv1.0/G/STATE/#' "
	                        "--count 1 --timeout 15", mqtt_py(), mqtt_pyconn(&site[1]));
	cr_expect_not_null(strstr(out, "MSG spBv1.0/G/STATE/E online-00000 qos=1 retain=1"),
	                   "retained at QM2: %s", out);
	free(out);
	/* Not matching the route: local only. */
	pub_range(&site[0], "other/x", "local", 0, 1, 1, NULL);

	cr_assert(wait_drained(20000), "queues did not drain");
	chan_sleep_ms(500);
	char *ro = mqtt_bg_output(&rsub), *lo = mqtt_bg_output(&lsub);
	for (int q = 0; q <= 2; q++) {
		snprintf(line, sizeof(line), "MSG spBv1.0/G/NDATA/E%d m-%05d qos=%d retain=0 dup=0", q,
		         q, q);
		cr_expect_eq(mqtt_count_lines(ro, line), 1, "QM2 got '%s' %d times\n%s", line,
		             mqtt_count_lines(ro, line), ro);
		cr_expect_eq(mqtt_count_lines(lo, line), 1, "QM1 got '%s' %d times", line,
		             mqtt_count_lines(lo, line));
	}
	cr_expect_null(strstr(ro, "other/x"), "a publication outside the route reached QM2: %s", ro);
	free(ro);
	free(lo);

	json_t *r = route_get(&site[0], "SPB.OUT");
	cr_assert_not_null(r, "display route SPB.OUT: no record");
	cr_expect_str_eq(chan_js(r, "topic"), "spBv1.0/#");
	cr_expect_str_eq(chan_js(r, "qmgr"), "QM2");
	cr_expect_eq(chan_ji(r, "matched"), 4, "matched %lld", chan_ji(r, "matched"));
	cr_expect_eq(chan_ji(r, "forwarded"), 4, "forwarded %lld", chan_ji(r, "forwarded"));
	cr_expect_eq(chan_ji(r, "dropped"), 0);
	cr_expect_eq(chan_ji(r, "loops_prevented"), 0);
	cr_expect(json_is_null(json_object_get(r, "last_drop_reason")) ||
	          chan_js(r, "last_drop_reason")[0] == '\0', "last_drop_reason set");
	json_decref(r);
	/* The table names the route and its target. */
	out = chan_ctl_ok(&site[0].qm, NULL, "display route 'SPB.*'");
	cr_expect(strstr(out, "SPB.OUT") && strstr(out, "qmgr QM2") && strstr(out, "FORWARDED"),
	          "%s", out);
	free(out);
	cr_expect_eq(chan_depth(&site[1].qm, "DLQ"), 0);
	cr_expect_eq(chan_depth(&site[0].qm, "DLQ"), 0);
}

/* ---- 2. prefixes ---- */

Test(mqtt_routes, local_and_remote_prefix_rewrite_the_topic)
{
	struct mqtt_bg rsub;

	pair_start();
	link_sites(&site[0], &site[1], 0, true, NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "define route SITE1 --topic 'site1/#' --qmgr QM2 "
	                 "--local-prefix site1/ --remote-prefix central/site1/"));
	start_link(&site[0], &site[1]);
	py_sub(&site[1], &rsub, "--id PFX --qos 1 --topic '#' --timeout 100");
	pub_range(&site[0], "site1/plant/x", "p", 0, 1, 1, NULL);
	expect_line(&rsub, "MSG central/site1/plant/x p-00000 qos=1 retain=0 dup=0");
	pub_range(&site[0], "site2/plant/x", "q", 0, 1, 1, NULL);
	cr_assert(wait_drained(20000));
	chan_sleep_ms(300);
	char *o = mqtt_bg_output(&rsub);
	cr_expect_eq(th_count(o, "MSG "), 1, "only the rewritten publication reaches QM2: %s", o);
	cr_expect_null(strstr(o, "MSG site1/"), "the local topic leaked: %s", o);
	free(o);
	json_t *r = route_get(&site[0], "SITE1");
	cr_assert_not_null(r);
	cr_expect_str_eq(chan_js(r, "local_prefix"), "site1/");
	cr_expect_str_eq(chan_js(r, "remote_prefix"), "central/site1/");
	cr_expect_eq(chan_ji(r, "forwarded"), 1);
	json_decref(r);
}

/* ---- 3. --queue routes ---- */

static json_t *msg_with_body(json_t *msgs, const char *body)
{
	for (size_t i = 0; i < json_array_size(msgs); i++)
		if (strcmp(chan_js(json_array_get(msgs, i), "body"), body) == 0)
			return json_array_get(msgs, i);
	return NULL;
}

static void expect_prop(json_t *m, const char *kv)
{
	char want[200];

	snprintf(want, sizeof(want), "%s\n", kv);
	const char *props = chan_js(m, "props");
	cr_expect_not_null(strstr(props, want), "'%s' not in the properties of '%s': %s", kv,
	                   chan_js(m, "body"), props);
}

Test(mqtt_routes, queue_route_puts_publications_with_properties)
{
	pair_start();
	link_sites(&site[0], &site[1], 0, true, NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "define qlocal APPQ"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define qlocal TELEQ"));
	free(chan_ctl_ok(&site[1].qm, NULL, "define qlocal FARQ"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define qremote FAR --rname FARQ --rqmname QM2 "
	                 "--xmitq QM2"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define route TO.APP --topic 'app/#' --queue APPQ"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define route TO.TELE --topic 'tele/+' --queue TELEQ "
	                 "--qos-min 1"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define route TO.FAR --topic 'far/#' --queue FAR"));
	start_link(&site[0], &site[1]);

	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic app/a --qos 1 -m hello-app"));
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic app/b/c --qos 0 --retain -m zero-app"));
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic tele/t1 --qos 0 -m tele-zero"));
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic tele/t1/deeper --qos 0 -m not-matched"));
	/* From an MQTT 5 client, with a user property. */
	pub_range(&site[0], "app/paho", "paho", 0, 1, 2, "--user-prop k=v");
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic far/x --qos 2 -m across"));

	cr_assert(chan_wait_depth(&site[0].qm, "APPQ", 3, 10000));
	/* a plain status lists the routes and their counters under the channels */
	char *st = chan_ctl_ok(&site[0].qm, NULL, "status");
	cr_expect(strstr(st, "ROUTE") != NULL && strstr(st, "TO.APP") != NULL &&
	          strstr(st, "queue APPQ") != NULL, "status lists no routes:\n%s", st);
	free(st);
	json_t *msgs = chan_get_msgs(&site[0].qm, "APPQ");
	char *dump = json_dumps(msgs, JSON_COMPACT);
	json_t *m = msg_with_body(msgs, "hello-app");
	cr_assert_not_null(m, "APPQ: %s", dump);
	cr_expect(json_is_true(json_object_get(m, "persistent")), "QoS 1 must be persistent: %s",
	          dump);
	expect_prop(m, "mqtt.topic=app/a");
	expect_prop(m, "mqtt.qos=1");
	expect_prop(m, "mqtt.retain=0");
	expect_prop(m, "mqtt.path=QM1");
	m = msg_with_body(msgs, "zero-app");
	cr_assert_not_null(m, "APPQ: %s", dump);
	cr_expect(json_is_false(json_object_get(m, "persistent")), "QoS 0 must be nonpersistent: %s",
	          dump);
	expect_prop(m, "mqtt.topic=app/b/c");
	expect_prop(m, "mqtt.qos=0");
	expect_prop(m, "mqtt.retain=1");
	m = msg_with_body(msgs, "paho-00000");
	cr_assert_not_null(m, "APPQ: %s", dump);
	expect_prop(m, "mqtt.qos=2");
	/* The MQTT 5 properties, base64. */
	cr_expect_not_null(strstr(chan_js(m, "props"), "mqtt.props="), "no mqtt.props: %s", dump);
	free(dump);
	json_decref(msgs);

	/* --qos-min 1: a QoS 0 publication is put persistent, at QoS 1. */
	cr_assert(chan_wait_depth(&site[0].qm, "TELEQ", 1, 10000));
	msgs = chan_get_msgs(&site[0].qm, "TELEQ");
	dump = json_dumps(msgs, JSON_COMPACT);
	cr_assert_eq(json_array_size(msgs), 1, "TELEQ: %s", dump);
	m = msg_with_body(msgs, "tele-zero");
	cr_assert_not_null(m, "TELEQ: %s", dump);
	cr_expect(json_is_true(json_object_get(m, "persistent")),
	          "--qos-min 1 must make it persistent: %s", dump);
	expect_prop(m, "mqtt.qos=1");
	free(dump);
	json_decref(msgs);

	/* A remote queue definition: it travels by channel to QM2's FARQ. */
	if (!chan_wait_depth(&site[1].qm, "FARQ", 1, 20000)) {
		dump_sites();
		cr_assert_fail("the publication routed to FAR did not reach QM2's FARQ");
	}
	msgs = chan_get_msgs(&site[1].qm, "FARQ");
	dump = json_dumps(msgs, JSON_COMPACT);
	m = msg_with_body(msgs, "across");
	cr_assert_not_null(m, "FARQ: %s", dump);
	expect_prop(m, "mqtt.topic=far/x");
	expect_prop(m, "mqtt.qos=2");
	cr_expect(json_is_true(json_object_get(m, "persistent")));
	free(dump);
	json_decref(msgs);

	cr_expect_eq(route_counter(&site[0], "TO.APP", "forwarded"), 3);
	cr_expect_eq(route_counter(&site[0], "TO.TELE", "matched"), 1);
	cr_expect_eq(route_counter(&site[0], "TO.FAR", "forwarded"), 1);
	/* delete route: later publications stay local. */
	free(chan_ctl_ok(&site[0].qm, NULL, "delete route TO.APP"));
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic app/a --qos 1 -m after-delete"));
	cr_expect_eq(chan_depth(&site[0].qm, "APPQ"), 0, "a deleted route still puts");
	cr_expect_null(route_get(&site[0], "TO.APP"), "the deleted route is still displayed");
}

/* ---- 4. a mesh of three agents ---- */

Test(mqtt_routes, mesh_of_three_never_loops_and_delivers_once)
{
	static const struct chan_qm_opts o3 = { .label = "qm3", .cert = "qm1-ec.pem",
		.key = "qm1-ec.key" };
	struct mqtt_bg sub[NSITES];
	char line[200];

	pair_start();
	site_start(&site[2], "QM3", &o3);
	for (int i = 0; i < NSITES; i++)
		for (int j = 0; j < NSITES; j++) {
			if (i == j)
				continue;
			link_sites(&site[i], &site[j], 0, false, NULL);
			free(chan_ctl_ok(&site[i].qm, NULL, "define route MESH.TO.%s --topic 'mesh/#' "
			                 "--qmgr %s", site[j].qm.name, site[j].qm.name));
		}
	for (int i = 0; i < NSITES; i++)
		for (int j = 0; j < NSITES; j++)
			if (i != j)
				start_link(&site[i], &site[j]);
	for (int i = 0; i < NSITES; i++)
		py_sub(&site[i], &sub[i], "--qos 2 --topic 'mesh/#' --timeout 100");

	/* One publication at each agent. */
	for (int i = 0; i < NSITES; i++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "from%d", i + 1);
		pub_range(&site[i], "mesh/a", prefix, 0, 1, 1, NULL);
	}
	for (int i = 0; i < NSITES; i++)
		for (int k = 1; k <= NSITES; k++) {
			snprintf(line, sizeof(line), "MSG mesh/a from%d-00000 qos=1", k);
			expect_line(&sub[i], line);
		}
	/* No loop: the queues empty and the route counters stop moving. */
	long long last = -1;
	bool stable = false;
	for (long long end = chan_now_ms() + 30000; !stable && chan_now_ms() < end;) {
		if (!wait_drained(5000))
			continue;
		long long sum = 0;
		for (int i = 0; i < NSITES; i++)
			for (int j = 0; j < NSITES; j++) {
				char name[64];
				if (i == j)
					continue;
				snprintf(name, sizeof(name), "MESH.TO.%s", site[j].qm.name);
				sum += route_counter(&site[i], name, "matched");
			}
		stable = sum == last;
		last = sum;
		if (!stable)
			chan_sleep_ms(700);
	}
	if (!stable)
		dump_sites();
	cr_assert(stable, "publications keep circulating in the mesh (matched %lld)", last);

	long long forwarded = 0, loops = 0;
	for (int i = 0; i < NSITES; i++)
		for (int j = 0; j < NSITES; j++) {
			char name[64];
			if (i == j)
				continue;
			snprintf(name, sizeof(name), "MESH.TO.%s", site[j].qm.name);
			json_t *r = route_get(&site[i], name);
			cr_assert_not_null(r);
			cr_log_info("%s %s: matched %lld forwarded %lld loops_prevented %lld",
			            site[i].qm.name, name, chan_ji(r, "matched"), chan_ji(r, "forwarded"),
			            chan_ji(r, "loops_prevented"));
			forwarded += chan_ji(r, "forwarded");
			loops += chan_ji(r, "loops_prevented");
			json_decref(r);
		}
	cr_expect_gt(loops, 0, "no loop was prevented: the path did not stop anything");
	/* Each subscriber: each of the three publications exactly once. A
	 * path that only lists the agents passed stops loops but lets an
	 * agent forward to a third one what the origin already sent there:
	 * that shows here as two copies. */
	int bad = 0;
	for (int i = 0; i < NSITES; i++) {
		char *o = mqtt_bg_output(&sub[i]);
		for (int k = 1; k <= NSITES; k++) {
			snprintf(line, sizeof(line), "MSG mesh/a from%d-00000 qos=1", k);
			int c = th_count(o, line);
			if (c != 1) {
				bad++;
				cr_log_error("subscriber at %s received the publication made at QM%d %d times",
				             site[i].qm.name, k, c);
			}
		}
		free(o);
	}
	cr_assert_eq(bad, 0, "publications in a mesh must reach each subscriber exactly once "
	             "(forwarded %lld in all, loops prevented %lld): see the log above",
	             forwarded, loops);
	/* 3 publications x 2 other agents: 6 forwards would be exactly once. */
	cr_expect_eq(forwarded, 6, "forwarded %lld times in all for 3 publications", forwarded);
}

/* ---- 5. exactly once across kill -9 and cuts ---- */

#define EO_N 200
#define EO_TOPIC "eo/x"
#define EO_SUB "--id EO.SUB --clean no --expiry 3600 --qos %d --topic 'eo/#' --count -1 " \
	"--timeout 160 --reconnect"

static struct mqtt_bg eo_sub;

/* QM1 -> QM2 over mutual TLS (through the proxy when port is given), the
 * route EO.OUT, a persistent-session subscriber at QM2 that reconnects by
 * itself, and (copy) at QM2 a --queue route copying every publication QM2
 * makes to COPY: that queue counts what the channel and QM2's intake
 * delivered, independently of the subscriber. Without it, QM2 sends QoS 1
 * publications to the subscriber before their rows (mqtt_early.c): one
 * that goes on to a queue waits for its commit. */
static void eo_setup_with(int port, int qos, bool copy)
{
	char sub[300];

	pair_start();
	link_sites(&site[0], &site[1], port, true, "--batchsz 20");
	free(chan_ctl_ok(&site[0].qm, NULL, "define route EO.OUT --topic 'eo/#' --qmgr QM2"));
	if (copy) {
		free(chan_ctl_ok(&site[1].qm, NULL, "define qlocal COPY --maxdepth 100000"));
		free(chan_ctl_ok(&site[1].qm, NULL, "define route EO.COPY --topic 'eo/#' --queue COPY"));
	}
	start_link(&site[0], &site[1]);
	snprintf(sub, sizeof(sub), EO_SUB, qos);
	py_sub(&site[1], &eo_sub, sub);
}

static void eo_setup(int port, int qos)
{
	eo_setup_with(port, qos, true);
}

/* After an agent restart, a sender with messages on its XMITQ must run
 * again by itself; if it does not, the test says so at the end and starts
 * it by hand so that the counts still run. */
static bool eo_auto_restart = true;

static void eo_ensure_running(void)
{
	if (chan_depth(&site[0].qm, "QM2") == 0)
		return;
	if (chan_wait_state(&site[0].qm, "QM1.TO.QM2", "RUNNING", 15000) ||
	    chan_depth(&site[0].qm, "QM2") == 0)
		return;
	eo_auto_restart = false;
	cr_log_info("QM1.TO.QM2 did not run again by itself; starting it by hand");
	chan_ctl(&site[0].qm, NULL, NULL, NULL, "start channel QM1.TO.QM2");
	if (!chan_wait_state(&site[0].qm, "QM1.TO.QM2", "RUNNING", 20000) &&
	    chan_depth(&site[0].qm, "QM2") > 0) {
		dump_sites();
		cr_assert_fail("QM1.TO.QM2 does not run again after the restart");
	}
}

/* The subscriber's tally once it holds every number, or after timeout_ms. */
static void eo_wait_all(struct tally *t, int timeout_ms)
{
	for (long long end = chan_now_ms() + timeout_ms;; chan_sleep_ms(200)) {
		char *o = mqtt_bg_output(&eo_sub);
		tally_msgs(o, EO_TOPIC, "eo", EO_N, t);
		free(o);
		if (t->missing == 0 || chan_now_ms() > end)
			return;
		tally_free(t);
	}
}

/* kill -9 of QM2, restarted; its subscriber (let go if it was frozen)
 * back on it. */
static void eo_kill9_qm2(void)
{
	th_agent_kill9(&site[1].qm.a);
	kill(eo_sub.pid, SIGCONT);
	mqtt_broker_kill9_restart(&site[1]);
	/* Restarted QM2 must serve the session: wait until the subscriber is
	 * back (it reconnects by itself). */
	if (!mqtt_wait_client(&site[1], TELE, "EO.SUB", true, 30000)) {
		mqtt_bg_dump(&eo_sub, "subscriber");
		dump_sites();
		cr_assert_fail("the subscriber did not reconnect to the restarted QM2");
	}
}

/* Everything delivered and counted: the XMITQ and QM2's intake empty, the
 * subscriber holding every number (or 60 s passed), then a pause in which
 * a late duplicate would show. exactly: QoS 2 (zero duplicates); else
 * QoS 1 (at least once; repeats reported). */
static void eo_check(bool exactly)
{
	struct tally t;
	long long end = chan_now_ms() + 60000;
	bool drained = wait_drained(60000);

	eo_wait_all(&t, (int)(end - chan_now_ms()));
	if (t.missing == 0) {
		tally_free(&t);
		chan_sleep_ms(1500);
		char *o = mqtt_bg_output(&eo_sub);
		tally_msgs(o, EO_TOPIC, "eo", EO_N, &t);
		free(o);
	}
	if (!drained || t.missing > 0 || (exactly && t.dups > 0)) {
		mqtt_bg_dump(&eo_sub, "subscriber");
		dump_sites();
	}
	cr_log_info("subscriber: %d messages for %d, %d repeats (%d with DUP), %d missing",
	            t.got, EO_N, t.dups, t.dup_flagged, t.missing);
	cr_expect(drained, "the XMITQ or SYSTEM.MQTT.PUBLISH did not drain");
	/* The channel and QM2's intake: each publication made once at QM2. */
	check_queue_once(&site[1].qm, "COPY", "eo", EO_N);
	if (exactly) {
		cr_assert(t.missing == 0 && t.dups == 0 && t.foreign == 0,
		          "QoS 2: %d received for %d, %d duplicates, %d missing, %d unexpected; %s",
		          t.got, EO_N, t.dups, t.missing, t.foreign, t.report);
	} else {
		/* QoS 1 promises at least once. A repeat at the subscriber is
		 * legitimate when QM2 was killed after sending a PUBLISH whose
		 * PUBACK it had not stored: it sends it again (DUP). What must
		 * not happen is a second publication made by the channel, and
		 * COPY above proves there is none. */
		cr_assert(t.missing == 0 && t.foreign == 0,
		          "QoS 1: %d received for %d, %d missing, %d unexpected; %s", t.got, EO_N,
		          t.missing, t.foreign, t.report);
		if (t.dups > 0)
			cr_log_info("QoS 1: %d repeats at the subscriber (%d of them flagged DUP): %s",
			            t.dups, t.dup_flagged, t.report);
	}
	tally_free(&t);
	cr_expect_eq(chan_depth(&site[0].qm, "DLQ"), 0);
	cr_expect_eq(chan_depth(&site[1].qm, "DLQ"), 0);
	cr_expect(eo_auto_restart, "the sender had to be started by hand after a restart");
}

/* No crash: a persistent QoS 1 subscriber at QM2 receives every routed
 * publication once and in the order it was published, while it reads
 * (QM2 sends before the row, mqtt_early.c) and while it is frozen long
 * enough for QM2 to write rows for what waits (the first half of the
 * second burst in memory with rows, the rest read back from the store). */
Test(mqtt_routes, persistent_qos1_subscriber_gets_routed_publications_once_in_order)
{
	struct tally t;

	eo_setup_with(0, 1, false);
	pub_range(&site[0], EO_TOPIC, "eo", 0, EO_N / 2, 1, NULL);
	cr_assert_eq(kill(eo_sub.pid, SIGSTOP), 0);
	pub_range(&site[0], EO_TOPIC, "eo", EO_N / 2, EO_N / 2, 1, NULL);
	if (!wait_drained(30000)) {
		kill(eo_sub.pid, SIGCONT);
		dump_sites();
		cr_assert_fail("the publications did not reach QM2's subscriber session");
	}
	chan_sleep_ms(300);   /* longer than QM2 holds rows back (MQ_EARLY_HOLD_MS) */
	cr_assert_eq(kill(eo_sub.pid, SIGCONT), 0);
	eo_wait_all(&t, 60000);
	chan_sleep_ms(1000);   /* a late copy would show */
	tally_free(&t);
	char *o = mqtt_bg_output(&eo_sub);
	tally_msgs(o, EO_TOPIC, "eo", EO_N, &t);
	free(o);
	if (t.missing > 0 || t.dups > 0 || t.out_of_order > 0) {
		mqtt_bg_dump(&eo_sub, "subscriber");
		dump_sites();
	}
	cr_expect(t.missing == 0 && t.dups == 0 && t.foreign == 0 && t.out_of_order == 0,
	          "%d received for %d, %d duplicates, %d missing, %d out of order, %d unexpected; %s",
	          t.got, EO_N, t.dups, t.missing, t.out_of_order, t.foreign, t.report);
	tally_free(&t);
}

/* kill -9 of QM2 while QoS 1 publications were sent to the persistent
 * subscriber before their rows: whatever state QM2 was in (batch held,
 * rows written, channel mid-batch), every publication arrives after the
 * restart (QoS 1: a repeat is allowed). */
Test(mqtt_routes, at_least_once_qos1_kill9_receiver_sending_before_rows)
{
	struct tally t;

	eo_setup_with(0, 1, false);
	pub_range(&site[0], EO_TOPIC, "eo", 0, 50, 1, NULL);
	cr_assert_eq(kill(eo_sub.pid, SIGSTOP), 0);
	pub_range(&site[0], EO_TOPIC, "eo", 50, 100, 1, NULL);
	eo_kill9_qm2();
	eo_ensure_running();
	pub_range(&site[0], EO_TOPIC, "eo", 150, EO_N - 150, 1, NULL);
	eo_wait_all(&t, 60000);
	if (t.missing > 0 || t.foreign > 0) {
		mqtt_bg_dump(&eo_sub, "subscriber");
		dump_sites();
	}
	cr_log_info("subscriber: %d messages for %d, %d repeats (%d with DUP)", t.got, EO_N, t.dups,
	            t.dup_flagged);
	cr_assert(t.missing == 0 && t.foreign == 0, "QoS 1: %d received for %d, %d missing, "
	          "%d unexpected; %s", t.got, EO_N, t.missing, t.foreign, t.report);
	tally_free(&t);
	cr_expect(wait_drained(30000), "the XMITQ or SYSTEM.MQTT.PUBLISH did not drain");
}

/* kill -9 of QM2 twice: once while the publications wait in the frozen
 * subscriber's session (and its socket), once while the channel is
 * moving a batch that waited on the XMITQ. */
static void eo_kill_receiver(int qos)
{
	eo_setup(0, qos);
	pub_range(&site[0], EO_TOPIC, "eo", 0, 50, qos, NULL);
	/* The subscriber stops reading: QM2 holds the next 100 for it. */
	cr_assert_eq(kill(eo_sub.pid, SIGSTOP), 0);
	pub_range(&site[0], EO_TOPIC, "eo", 50, 100, qos, NULL);
	if (!wait_drained(30000)) {
		dump_sites();
		cr_assert_fail("the publications did not reach QM2's subscriber session");
	}
	eo_kill9_qm2();
	eo_ensure_running();

	/* Second kill: 50 wait on the XMITQ with the channel stopped; the
	 * channel starts, QM2 dies at once, whatever moved by then. */
	free(chan_ctl_ok(&site[0].qm, NULL, "stop channel QM1.TO.QM2"));
	cr_assert(chan_wait_state(&site[0].qm, "QM1.TO.QM2", "STOPPED", 15000));
	pub_range(&site[0], EO_TOPIC, "eo", 150, 50, qos, NULL);
	cr_assert_eq(chan_depth(&site[0].qm, "QM2"), 50, "the XMITQ does not hold the 50");
	free(chan_ctl_ok(&site[0].qm, NULL, "start channel QM1.TO.QM2"));
	long left = chan_depth(&site[0].qm, "QM2");
	th_agent_kill9(&site[1].qm.a);
	cr_log_info("second kill of QM2 with %ld of 50 on the XMITQ", left);
	mqtt_broker_kill9_restart(&site[1]);
	eo_ensure_running();
	eo_check(qos == 2);
	/* QM1 was never restarted: its route counted each once. */
	cr_expect_eq(route_counter(&site[0], "EO.OUT", "forwarded"), EO_N);
	cr_expect_eq(route_counter(&site[0], "EO.OUT", "dropped"), 0);
}

Test(mqtt_routes, exactly_once_qos2_kill9_receiver)
{
	eo_kill_receiver(2);
}

Test(mqtt_routes, at_least_once_qos1_kill9_receiver)
{
	eo_kill_receiver(1);
}

Test(mqtt_routes, exactly_once_qos2_kill9_sender)
{
	eo_setup(0, 2);
	pub_range(&site[0], EO_TOPIC, "eo", 0, 50, 2, NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "stop channel QM1.TO.QM2"));
	cr_assert(chan_wait_state(&site[0].qm, "QM1.TO.QM2", "STOPPED", 15000));
	pub_range(&site[0], EO_TOPIC, "eo", 50, 100, 2, NULL);
	long held = chan_depth(&site[0].qm, "QM2");
	/* The first 50 may still be on their way: at least the 100. */
	cr_assert_geq(held, 100, "the XMITQ holds %ld", held);
	mqtt_broker_kill9_restart(&site[0]);
	cr_assert_eq(chan_depth(&site[0].qm, "QM2"), held,
	             "the XMITQ lost publications in the kill -9 of QM1");
	/* Start (the channel was stopped on purpose), publish more, and kill
	 * QM1 again at once: wherever the transfer is. */
	free(chan_ctl_ok(&site[0].qm, NULL, "start channel QM1.TO.QM2"));
	pub_range(&site[0], EO_TOPIC, "eo", 150, 50, 2, NULL);
	long left = chan_depth(&site[0].qm, "QM2");
	mqtt_broker_kill9_restart(&site[0]);
	cr_log_info("second kill of QM1 with %ld on the XMITQ", left);
	eo_ensure_running();
	eo_check(true);
}

Test(mqtt_routes, exactly_once_qos2_connection_cuts)
{
	/* Bytes after which successive connections are cut: in the TLS
	 * handshake, in the negotiation, and in batches. */
	static const long cuts[] = { 2500, 7000, 14000 };
	const int ncuts = (int)(sizeof(cuts) / sizeof(cuts[0]));
	char sub[300];

	pair_start();
	proxy = tcpproxy_start(site[1].qm.a.port);
	cr_assert_not_null(proxy);
	link_sites(&site[0], &site[1], tcpproxy_port(proxy), true, "--batchsz 20");
	free(chan_ctl_ok(&site[0].qm, NULL, "define route EO.OUT --topic 'eo/#' --qmgr QM2"));
	free(chan_ctl_ok(&site[1].qm, NULL, "define qlocal COPY --maxdepth 100000"));
	free(chan_ctl_ok(&site[1].qm, NULL, "define route EO.COPY --topic 'eo/#' --queue COPY"));
	start_link(&site[0], &site[1]);
	snprintf(sub, sizeof(sub), EO_SUB, 2);
	py_sub(&site[1], &eo_sub, sub);

	pub_range(&site[0], EO_TOPIC, "eo", 0, 50, 2, NULL);
	/* 130 wait on the XMITQ; the planned cuts hit the next connections. */
	free(chan_ctl_ok(&site[0].qm, NULL, "stop channel QM1.TO.QM2"));
	cr_assert(chan_wait_state(&site[0].qm, "QM1.TO.QM2", "STOPPED", 15000));
	pub_range(&site[0], EO_TOPIC, "eo", 50, 130, 2, NULL);
	tcpproxy_cut_plan(proxy, cuts, ncuts);
	free(chan_ctl_ok(&site[0].qm, NULL, "start channel QM1.TO.QM2"));
	long long end = chan_now_ms() + 60000;
	while (tcpproxy_cuts(proxy) < ncuts && chan_depth(&site[0].qm, "QM2") > 0 &&
	       chan_now_ms() < end)
		chan_sleep_ms(20);
	cr_log_info("%d cuts, %d connections", tcpproxy_cuts(proxy), tcpproxy_accepted(proxy));
	cr_assert_eq(tcpproxy_cuts(proxy), ncuts, "only %d of the planned cuts happened",
	             tcpproxy_cuts(proxy));
	if (!wait_drained(60000)) {
		dump_sites();
		cr_assert_fail("the transfer did not complete after the cuts");
	}

	/* The last 20: QM2 commits a batch but its confirmation never
	 * reaches QM1 (frozen); QM1 waits in doubt, then every connection is
	 * cut. The batch must not be sent again as new messages. */
	tcpproxy_freeze(proxy, false, true);
	pub_range(&site[0], EO_TOPIC, "eo", 180, 20, 2, NULL);
	long long until = chan_now_ms() + 20000;
	bool doubt = false;
	while (!doubt && chan_now_ms() < until) {
		json_t *st = chan_status(&site[0].qm, "QM1.TO.QM2");
		doubt = chan_depth(&site[1].qm, "COPY") > 180 && st != NULL &&
		        (json_is_true(json_object_get(st, "indoubt")) ||
		         strcmp(chan_js(st, "indoubt"), "yes") == 0);
		json_decref(st);
		if (!doubt)
			chan_sleep_ms(50);
	}
	if (!doubt) {
		dump_sites();
		cr_assert_fail("QM2 did not commit a batch that QM1 holds in doubt");
	}
	cr_log_info("in doubt at the cut: %ld on the XMITQ, %ld committed at QM2",
	            chan_depth(&site[0].qm, "QM2"), chan_depth(&site[1].qm, "COPY"));
	tcpproxy_cut_all(proxy);
	tcpproxy_freeze(proxy, false, false);
	eo_ensure_running();
	eo_check(true);
	cr_expect_eq(route_counter(&site[0], "EO.OUT", "forwarded"), EO_N);
}

/* ---- 6. bad input ---- */

static void define_refused(struct mqtt_broker *b, const char *args, const char *want1,
                           const char *want2)
{
	char *out = NULL, *err = NULL;
	int rc = chan_ctl(&b->qm, NULL, &out, &err, "define route %s", args);
	char all[3000];

	snprintf(all, sizeof(all), "%s%s", out ? out : "", err ? err : "");
	cr_expect_neq(rc, 0, "define route %s was accepted: %s", args, all);
	cr_expect_not_null(strstr(all, want1), "define route %s: '%s' not in: %s", args, want1,
	                   all);
	if (want2 != NULL)
		cr_expect_not_null(strstr(all, want2), "define route %s: '%s' not in: %s", args, want2,
		                   all);
	free(out);
	free(err);
}

Test(mqtt_routes, define_refuses_bad_filters_and_unknown_targets)
{
	site_start(&site[0], "QM1", NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "define qlocal QM2 --usage xmitq"));
	define_refused(&site[0], "BAD1 --topic 'a/#/b' --qmgr QM2", "position 3", "a/#/b");
	define_refused(&site[0], "BAD2 --topic 'a/b+' --qmgr QM2", "position 4", NULL);
	define_refused(&site[0], "BAD3 --topic '' --qmgr QM2", "topic", NULL);
	define_refused(&site[0], "NOQ --topic 'a/#' --queue NOSUCHQ", "NOSUCHQ", NULL);
	define_refused(&site[0], "NOQM --topic 'a/#' --qmgr QMX", "QMX", NULL);
	define_refused(&site[0], "SELF --topic 'a/#' --qmgr QM1", "QM1", NULL);
	define_refused(&site[0], "BOTH --topic 'a/#' --qmgr QM2 --queue DLQ", "exactly one", NULL);
	define_refused(&site[0], "WILD --topic 'a/#' --qmgr QM2 --remote-prefix 'x/+/'", "wildcard",
	               NULL);
	/* None of them exists; a good one does, and twice needs --replace. */
	char *out = chan_ctl_ok(&site[0].qm, NULL, "--json display route");
	cr_expect_str_eq(out, "[]\n", "refused routes were stored: %s", out);
	free(out);
	free(chan_ctl_ok(&site[0].qm, NULL, "define route GOOD --topic 'a/#' --qmgr QM2"));
	define_refused(&site[0], "GOOD --topic 'b/#' --qmgr QM2", "GOOD", NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "define route GOOD --topic 'b/#' --qmgr QM2 --replace"));
	json_t *r = route_get(&site[0], "GOOD");
	cr_assert_not_null(r);
	cr_expect_str_eq(chan_js(r, "topic"), "b/#");
	json_decref(r);
	/* Definitions survive a restart. */
	mqtt_broker_kill9_restart(&site[0]);
	r = route_get(&site[0], "GOOD");
	cr_assert_not_null(r, "route GOOD lost in a restart");
	cr_expect_str_eq(chan_js(r, "qmgr"), "QM2");
	json_decref(r);
}

/* A dead letter with the header of doc/CHANNELS.md section 8 and the
 * publication's topic. */
static bool dlq_has(struct chan_qm *q, const char *reason, const char *topic)
{
	json_t *msgs = chan_get_msgs(q, "DLQ");
	char r[64], t[200];
	bool hit = false;

	snprintf(r, sizeof(r), "chand.dlh.reason=%s\n", reason);
	snprintf(t, sizeof(t), "mqtt.topic=%s\n", topic);
	for (size_t i = 0; i < json_array_size(msgs) && !hit; i++) {
		const char *p = chan_js(json_array_get(msgs, i), "props");
		hit = strstr(p, r) && strstr(p, t) && strstr(p, "chand.dlh.dest_q=" ROUTE_Q "\n") &&
		      strstr(p, "chand.dlh.dest_qmgr=QM2\n");
	}
	if (!hit) {
		char *d = json_dumps(msgs, JSON_COMPACT);
		cr_log_info("%s DLQ: %.3000s", q->name, d);
		free(d);
	}
	json_decref(msgs);
	return hit;
}

Test(mqtt_routes, publication_longer_than_maxmsgl_is_a_dead_letter)
{
	struct mqtt_bg rsub;
	char big[3001];

	pair_start();
	link_sites(&site[0], &site[1], 0, true, "--maxmsgl 1000");
	free(chan_ctl_ok(&site[1].qm, NULL, "alter channel QM1.TO.QM2 --maxmsgl 1000"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define route BIG --topic 'big/#' --qmgr QM2"));
	start_link(&site[0], &site[1]);
	py_sub(&site[1], &rsub, "--qos 1 --topic 'big/#' --timeout 100");
	memset(big, 'B', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	free(chan_ctl_ok(&site[0].qm, NULL, "put --topic big/huge --qos 1 -m %s", big));
	pub_range(&site[0], "big/small", "small", 0, 1, 1, NULL);
	expect_line(&rsub, "MSG big/small small-00000 qos=1");
	cr_assert(wait_drained(20000));
	/* A message longer than the negotiated MAXMSGL stays at the sending
	 * end (doc/CHANNELS.md section 8): QM1's DLQ, reason CHD2003, and the
	 * channel goes on. */
	long d1 = chan_depth(&site[0].qm, "DLQ"), d2 = chan_depth(&site[1].qm, "DLQ");
	if (d1 + d2 != 1)
		dump_sites();
	cr_assert_eq(d1 + d2, 1, "dead letters: %ld at QM1, %ld at QM2", d1, d2);
	cr_expect(dlq_has(d1 == 1 ? &site[0].qm : &site[1].qm, "CHD2003", "big/huge"),
	          "the dead letter lacks its reason, destination or topic");
	cr_expect_eq(d1, 1, "the dead letter is at QM2, not at the sending end");
	char *o = mqtt_bg_output(&rsub);
	cr_expect_null(strstr(o, "big/huge"), "the long publication was delivered: %.200s", o);
	free(o);
	json_t *st = chan_status(&site[0].qm, "QM1.TO.QM2");
	cr_expect_str_eq(chan_js(st, "state"), "RUNNING", "a dead letter must not stop the channel");
	json_decref(st);
}

Test(mqtt_routes, full_transmission_queue_refuses_and_loses_nothing)
{
	struct mqtt_bg rsub, v311;

	pair_start();
	link_sites(&site[0], &site[1], 0, true, NULL);
	free(chan_ctl_ok(&site[0].qm, NULL, "alter qlocal QM2 --maxdepth 5"));
	free(chan_ctl_ok(&site[0].qm, NULL, "define route FULL --topic 'full/#' --qmgr QM2"));
	py_sub(&site[1], &rsub, "--id FULL.SUB --clean no --expiry 600 --qos 1 --topic 'full/#' "
	       "--timeout 120");
	/* The channel is stopped (a put would trigger it): the XMITQ fills. */
	free(chan_ctl_ok(&site[0].qm, NULL, "stop channel QM1.TO.QM2"));
	char *out = NULL, *err = NULL;
	int rc = mqtt_run(&out, &err, 60, "%s pub %s --id FULL.PUB --qos 1 --topic full/x "
	                  "--timeout 30 --message f-00000 --message f-00001 --message f-00002 "
	                  "--message f-00003 --message f-00004 --message f-00005 --message f-00006 "
	                  "--message f-00007", mqtt_py(), mqtt_pyconn(&site[0]));
	cr_assert_eq(rc, 0, "pub: exit %d\n%s%s", rc, out ? out : "", err ? err : "");
	/* MQTT 5: PUBACK 0x97 (quota exceeded) for the three that do not fit. */
	int ok = 0, quota = 0, other = 0;
	for (const char *p = out; p != NULL && *p != '\0';) {
		int mid, code;
		if (sscanf(p, "PUBACK mid=%d rc=%d", &mid, &code) == 2) {
			if (code == 0)
				ok++;
			else if (code == 0x97)
				quota++;
			else
				other++;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	cr_assert(ok == 5 && quota == 3 && other == 0,
	          "PUBACKs: %d accepted, %d quota exceeded (0x97), %d other\n%s", ok, quota, other,
	          out);
	free(out);
	free(err);
	cr_assert_eq(chan_depth(&site[0].qm, "QM2"), 5);
	long long dropped = route_counter(&site[0], "FULL", "dropped");
	cr_log_info("route FULL: dropped %lld after the refusals", dropped);

	/* MQTT 3.1.1 has no refusal: no PUBACK, the publication waits with
	 * its client (which sends it again after the broker closes the
	 * connection) until there is room. */
	mqtt_bg_start(&site[0], &v311, "exec %s pub %s --version 311 --id V311.PUB --clean no "
	              "--qos 1 --topic full/y --timeout 90 --reconnect --message v311-00000",
	              mqtt_py(), mqtt_pyconn(&site[0]));
	cr_assert(mqtt_bg_wait(&v311, "MID ", 15000), "the 3.1.1 publisher did not publish");
	chan_sleep_ms(2000);
	char *vo = mqtt_bg_output(&v311);
	cr_assert_null(strstr(vo, "PUBLISHED"), "MQTT 3.1.1 publication acknowledged while the "
	               "XMITQ is full: %s", vo);
	free(vo);
	cr_assert_eq(chan_depth(&site[0].qm, "QM2"), 5);

	/* Room again: the 3.1.1 publication goes through; the refused three
	 * are published again by their client (as an MQTT 5 client does after
	 * 0x97). */
	start_link(&site[0], &site[1]);
	if (mqtt_bg_wait_exit(&v311, 60000) != 0) {
		mqtt_bg_dump(&v311, "3.1.1 publisher");
		dump_sites();
		cr_assert_fail("the 3.1.1 publication was not accepted once the XMITQ drained");
	}
	cr_assert(wait_drained(20000));
	pub_range(&site[0], "full/x", "f", 5, 3, 1, NULL);
	cr_assert(wait_drained(20000));
	expect_line(&rsub, "MSG full/x f-00007 qos=1");
	expect_line(&rsub, "MSG full/y v311-00000 qos=1");
	chan_sleep_ms(500);
	char *o = mqtt_bg_output(&rsub);
	struct tally t;
	tally_msgs(o, "full/x", "f", 8, &t);
	cr_expect(t.missing == 0 && t.dups == 0 && t.foreign == 0,
	          "full/x: %d received for 8; %s", t.got, t.report);
	tally_free(&t);
	cr_expect_eq(th_count(o, "MSG full/y v311-00000 "), 1, "%s", o);
	free(o);
	cr_expect_eq(chan_depth(&site[0].qm, "DLQ"), 0);
	cr_expect_eq(chan_depth(&site[1].qm, "DLQ"), 0);
}
