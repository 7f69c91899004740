/* The README's "Ten-minute walkthrough: two hosts", run as written.
 *
 * The shell blocks of that section are extracted from README.md and run in
 * document order, each on the host its HTML comment names, so the README
 * cannot drift from the programs:
 *
 *   <!-- walkthrough: settings -->           export NAME=VALUE ... (the test
 *                                            supplies its own values: A_HOST,
 *                                            A_PORT, B_HOST, B_PORT,
 *                                            A_MQTT_PORT, B_MQTT_PORT)
 *   <!-- walkthrough: host A -->             run on A (host B, both)
 *   <!-- walkthrough: host B, copy -->       scp FILE... "$A_HOST:chand/":
 *                                            the test copies the files
 *   <!-- walkthrough: output -->             a text block: what the block
 *                                            before it prints ("..." = any)
 *   options: openssl | certtool (one variant of step 1), exit N (expected
 *   exit status), check NAME (the test verifies more after the block).
 *
 * Every fenced block of the section must carry such a comment, so nothing
 * shown there goes untested. Each host gets its own $HOME (the walkthrough
 * works in ~/chand) and `chand`/`chanctl` on PATH are the binaries under
 * test. As root, when `ip netns` works, A and B live in two network
 * namespaces joined by a veth pair with private addresses (10.231.7.1/30
 * and .2, on the veth only), and the blocks run as nobody (chand refuses
 * root); otherwise both run on 127.0.0.1 with free ports (the telemetry
 * channels' too: 8883 on both in the namespaces). The agents
 * daemonize, so a guard process cleans up (agents, namespaces, files) even
 * if the test process is killed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "helpers.h"

#define WT_HEADING "## Ten-minute walkthrough: two hosts"
#define WT_TAG "<!-- walkthrough:"
#define WT_CHANNEL "QM1.TO.QM2"
#define WT_MQTT_CHANNEL "MQTT.TLS"   /* the telemetry channel of A (step 7) and B (step 8) */
#define WT_MQTT_PORT 8883            /* its port in the namespaces */
#define WT_NET "10.231.7"            /* A is .1, B is .2, a /30 on the veth */
#define WT_NOBODY 65534              /* uid and gid the blocks run as under root */
#define WT_BLOCK_TIMEOUT 90          /* seconds, one block */

/* ---- the README section ---- */

enum wt_kind { WT_SETTINGS, WT_RUN, WT_COPY, WT_OUTPUT };
enum wt_variant { WT_ANY, WT_OPENSSL, WT_CERTTOOL };
enum { WT_A = 1, WT_B = 2 };

struct wt_block {
	int line;                 /* README.md line of the opening fence */
	enum wt_kind kind;
	unsigned hosts;           /* WT_A | WT_B */
	enum wt_variant variant;
	int exit_code;
	char check[32];
	char *text;               /* the block's lines, each ending in '\n' */
};

struct wt_doc {
	struct wt_block *v;
	size_t n;
};

static const char *wt_srcdir(void)
{
	const char *s = getenv("TEST_SRCDIR");
	return s != NULL ? s : TEST_SRCDIR;
}

static char *wt_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* Parses the inside of a walkthrough comment into b; false with a reason. */
static bool wt_parse_tag(char *spec, struct wt_block *b, char *why, size_t len)
{
	char *save = NULL;
	bool any = false;

	b->kind = WT_RUN;
	for (char *item = strtok_r(spec, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *w = wt_trim(item);
		any = true;
		if (strcmp(w, "settings") == 0)
			b->kind = WT_SETTINGS;
		else if (strcmp(w, "output") == 0)
			b->kind = WT_OUTPUT;
		else if (strcmp(w, "copy") == 0)
			b->kind = WT_COPY;
		else if (strcmp(w, "both") == 0)
			b->hosts = WT_A | WT_B;
		else if (strcmp(w, "host A") == 0)
			b->hosts |= WT_A;
		else if (strcmp(w, "host B") == 0)
			b->hosts |= WT_B;
		else if (strcmp(w, "openssl") == 0)
			b->variant = WT_OPENSSL;
		else if (strcmp(w, "certtool") == 0)
			b->variant = WT_CERTTOOL;
		else if (strncmp(w, "exit ", 5) == 0)
			b->exit_code = atoi(w + 5);
		else if (strncmp(w, "check ", 6) == 0 && strlen(w + 6) < sizeof(b->check))
			snprintf(b->check, sizeof(b->check), "%s", w + 6);
		else {
			snprintf(why, len, "unknown word '%s'", w);
			return false;
		}
	}
	if (!any) {
		snprintf(why, len, "empty tag");
		return false;
	}
	if ((b->kind == WT_RUN && b->hosts == 0) ||
	    (b->kind == WT_COPY && b->hosts != WT_A && b->hosts != WT_B) ||
	    ((b->kind == WT_SETTINGS || b->kind == WT_OUTPUT) && b->hosts != 0)) {
		snprintf(why, len, "the tag does not say where the block runs (host A, host B, both)");
		return false;
	}
	return true;
}

/* Splits the walkthrough section of readme into blocks. Every fenced block
 * of the section must follow a walkthrough comment. */
static void wt_parse(const char *readme, struct wt_doc *doc)
{
	const char *start = strstr(readme, "\n" WT_HEADING "\n");
	cr_assert_not_null(start, "README.md has no section '%s'", WT_HEADING);
	start++;
	int line = 1;
	for (const char *p = readme; p < start; p++)
		line += *p == '\n';
	const char *end = strstr(start + 1, "\n## ");
	size_t len = end != NULL ? (size_t)(end - start) + 1 : strlen(start);
	char *sec = strndup(start, len);
	struct wt_block pending;
	bool have_tag = false, in_fence = false;
	char *body = NULL, fence_info[32] = "";
	size_t body_len = 0;
	FILE *bf = NULL;
	int tag_line = 0;

	cr_assert_not_null(sec);
	memset(doc, 0, sizeof(*doc));
	/* strtok_r would skip empty lines and lose the numbering: walk by hand. */
	for (char *l = sec; l != NULL && *l != '\0'; line++) {
		char *nl = strchr(l, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (in_fence) {
			if (strcmp(wt_trim(l), "```") == 0) {
				fclose(bf);
				in_fence = false;
				if (have_tag) {
					pending.text = body;
					doc->v = realloc(doc->v, (doc->n + 1) * sizeof(*doc->v));
					cr_assert_not_null(doc->v);
					doc->v[doc->n++] = pending;
					have_tag = false;
				} else {
					free(body);
				}
				body = NULL;
			} else {
				fprintf(bf, "%s\n", l);
			}
		} else if (strncmp(l, "```", 3) == 0) {
			snprintf(fence_info, sizeof(fence_info), "%s", l + 3);
			char *info = wt_trim(fence_info);
			cr_assert(have_tag, "README.md line %d: a code block in the walkthrough without a "
			          "'%s ... -->' comment before it (every block there is run or checked)",
			          line, WT_TAG);
			bool text = pending.kind == WT_OUTPUT;
			cr_assert_str_eq(info, text ? "text" : "sh", "README.md line %d: a %s block must be "
			                 "fenced as ```%s", line, text ? "output" : "shell",
			                 text ? "text" : "sh");
			pending.line = line;
			in_fence = true;
			bf = open_memstream(&body, &body_len);
			cr_assert_not_null(bf);
		} else if (strncmp(l, WT_TAG, strlen(WT_TAG)) == 0) {
			char *close = strstr(l, "-->"), why[160];
			cr_assert(!have_tag, "README.md line %d: walkthrough comment at line %d is not "
			          "followed by a code block", line, tag_line);
			cr_assert_not_null(close, "README.md line %d: unterminated comment", line);
			*close = '\0';
			memset(&pending, 0, sizeof(pending));
			cr_assert(wt_parse_tag(l + strlen(WT_TAG), &pending, why, sizeof(why)),
			          "README.md line %d: bad walkthrough comment: %s", line, why);
			have_tag = true;
			tag_line = line;
		} else if (have_tag && *wt_trim(l) != '\0') {
			cr_assert_fail("README.md line %d: walkthrough comment at line %d must be followed "
			               "by its code block", line, tag_line);
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	cr_assert(!in_fence, "README.md: unterminated code block in the walkthrough");
	cr_assert(!have_tag, "README.md line %d: walkthrough comment without its block", tag_line);
	free(sec);
}

static void wt_doc_free(struct wt_doc *doc)
{
	for (size_t i = 0; i < doc->n; i++)
		free(doc->v[i].text);
	free(doc->v);
	memset(doc, 0, sizeof(*doc));
}

/* ---- the two hosts ---- */

struct wt_host {
	char id;                  /* 'A' or 'B' */
	char qm[8];               /* QM1, QM2 */
	char label[8];            /* qm1, qm2 */
	char home[512];           /* $HOME; the walkthrough works in ~/chand */
	char ns[32];              /* network namespace; "" on the loopback */
	char veth[16];
	bool ns_made;
	char addr[48];
	int port;
	int mqtt_port;            /* $A_MQTT_PORT, $B_MQTT_PORT */
};

static struct wt_env {
	char root[400];           /* temp dir: homes, scripts, bin */
	char bin[512];
	struct wt_host h[2];
	bool netns, veth_made, drop;
	int nscript;
	pid_t guard;
	int guard_fd;
	char *expected;           /* the messages the put block sends, one per line */
	long nexpected;
	char *mqtt_expected;      /* what the subscriber must print: "TOPIC LINE\n"... */
	long nmqtt;
	unsigned checks_done;
} E = { .guard_fd = -1 };

static struct wt_host *wt_host(char id)
{
	return &E.h[id == 'A' ? 0 : 1];
}

static pid_t wt_lock_holder(const struct wt_host *h)
{
	char path[600];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	pid_t pid = 0;

	snprintf(path, sizeof(path), "%s/chand/%s.lock", h->home, h->qm);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* The agent holds a record lock for its life: the holder is the agent. */
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		pid = fl.l_pid;
	close(fd);
	return pid;
}

static bool wt_wait_unlocked(const struct wt_host *h, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (wt_lock_holder(h) == 0)
			return true;
		usleep(50000);
	}
	return false;
}

static void wt_quiet_sh(const char *cmd)
{
	char *out = NULL, *err = NULL;

	th_sh(NULL, &out, &err, 20, "%s", cmd);
	free(out);
	free(err);
}

/* Deletes our namespaces (after killing anything still running in them)
 * and the veth pair if it never left the root namespace. */
static void wt_netns_down(void)
{
	char cmd[300];

	for (int i = 0; i < 2; i++) {
		struct wt_host *h = &E.h[i];
		if (!h->ns_made)
			continue;
		snprintf(cmd, sizeof(cmd), "for p in $(ip netns pids '%s'); do kill -KILL \"$p\"; done; "
		         "ip netns del '%s'", h->ns, h->ns);
		wt_quiet_sh(cmd);
		h->ns_made = false;
	}
	if (E.veth_made) {
		/* Only left in the root namespace if the setup stopped half way. */
		snprintf(cmd, sizeof(cmd), "! ip link show '%s' >/dev/null 2>&1 || ip link del '%s'",
		         E.h[0].veth, E.h[0].veth);
		wt_quiet_sh(cmd);
		E.veth_made = false;
	}
}

/* Ends whatever the walkthrough left: the agents (by the pid holding their
 * lock, or any process in our namespaces), the namespaces and veth, the
 * files. Safe to run twice, and in the guard after the test died. */
static void wt_cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		struct wt_host *h = &E.h[i];
		pid_t pid;
		if (h->home[0] == '\0' || (pid = wt_lock_holder(h)) <= 0)
			continue;
		kill(pid, SIGTERM);
		if (!wt_wait_unlocked(h, 10000) && (pid = wt_lock_holder(h)) > 0) {
			kill(pid, SIGKILL);
			wt_wait_unlocked(h, 5000);
		}
	}
	wt_netns_down();
	if (E.root[0] != '\0') {
		th_rmtree(E.root);
		E.root[0] = '\0';
	}
}

/* A process that outlives a killed test (Criterion's timeout) and cleans
 * up when the test's end of a pipe closes. */
static void wt_guard_start(void)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t g = fork();
	cr_assert_geq(g, 0);
	if (g == 0) {
		setsid();
		for (int fd = 3; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		for (;;) {
			char c;
			ssize_t r = read(p[0], &c, 1);
			if (r == 0 || (r < 0 && errno != EINTR))
				break;
		}
		/* Forked before the namespaces were made: try them all (the names
		 * carry the test's pid, so they can only be ours). */
		if (geteuid() == 0) {
			E.h[0].ns_made = E.h[1].ns_made = E.veth_made = true;
		}
		wt_cleanup();
		_exit(0);
	}
	close(p[0]);
	E.guard = g;
	E.guard_fd = p[1];
}

static void wt_fini(void)
{
	wt_cleanup();
	if (E.guard_fd >= 0) {
		close(E.guard_fd);
		E.guard_fd = -1;
	}
	if (E.guard > 0) {
		int st, i;
		for (i = 0; i < 600 && waitpid(E.guard, &st, WNOHANG) == 0; i++)
			usleep(50000);
		if (i == 600) {
			kill(E.guard, SIGKILL);
			waitpid(E.guard, &st, 0);
		}
		E.guard = 0;
	}
	free(E.expected);
	E.expected = NULL;
	free(E.mqtt_expected);
	E.mqtt_expected = NULL;
}

static bool wt_ip(const char *cmd)
{
	char *out = NULL, *err = NULL;
	int rc = th_sh(NULL, &out, &err, 20, "%s", cmd);

	if (rc != 0)
		fprintf(stderr, "walkthrough: '%s' failed (%d): %s", cmd, rc, err ? err : "");
	free(out);
	free(err);
	return rc == 0;
}

/* Two namespaces joined by a veth pair; false (and nothing left) if any
 * step fails. */
static bool wt_netns_up(void)
{
	char cmd[300];
	struct wt_host *a = &E.h[0], *b = &E.h[1];

	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "ip netns add '%s'", E.h[i].ns);
		if (!wt_ip(cmd))
			return false;
		E.h[i].ns_made = true;
	}
	snprintf(cmd, sizeof(cmd), "ip link add '%s' type veth peer name '%s'", a->veth, b->veth);
	if (!wt_ip(cmd))
		return false;
	E.veth_made = true;
	for (int i = 0; i < 2; i++) {
		struct wt_host *h = &E.h[i];
		snprintf(h->addr, sizeof(h->addr), WT_NET ".%d", i + 1);
		h->port = 1414;
		snprintf(cmd, sizeof(cmd), "ip link set '%s' netns '%s' && ip -n '%s' addr add %s/30 "
		         "dev '%s' && ip -n '%s' link set lo up && ip -n '%s' link set '%s' up", h->veth,
		         h->ns, h->ns, h->addr, h->veth, h->ns, h->ns, h->veth);
		if (!wt_ip(cmd))
			return false;
	}
	/* Containers and chroots can make a namespace yet not enter it
	 * ("mount --make-rslave /" fails): try before relying on it. */
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "ip netns exec '%s' true", E.h[i].ns);
		if (!wt_ip(cmd))
			return false;
	}
	return true;
}

static void wt_mkdir(const char *path, mode_t mode, bool give)
{
	cr_assert(mkdir(path, mode) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
	cr_assert_eq(chmod(path, mode), 0);
	if (give)
		cr_assert_eq(chown(path, WT_NOBODY, WT_NOBODY), 0, "chown %s: %s", path, strerror(errno));
}

static void wt_setup(void)
{
	char path[600], real[PATH_MAX];
	int pid = (int)getpid();

	E.drop = geteuid() == 0;
	char *t = th_tempdir("wt");
	cr_assert_not_null(t);
	snprintf(E.root, sizeof(E.root), "%s", t);
	free(t);
	/* The blocks run as nobody under root: it must reach its home. */
	cr_assert_eq(chmod(E.root, 0711), 0);
	snprintf(E.bin, sizeof(E.bin), "%s/bin", E.root);
	wt_mkdir(E.bin, 0755, false);
	snprintf(path, sizeof(path), "%s/scripts", E.root);
	wt_mkdir(path, 0755, false);
	/* Copies, not links: the build directory may be where nobody cannot
	 * go (a clone under /root, mode 0700). */
	const char *bins[2][2] = { { "chand", th_chand_bin() }, { "chanctl", th_chanctl_bin() } };
	for (int i = 0; i < 2; i++) {
		char *o = NULL, *e = NULL;
		cr_assert_not_null(realpath(bins[i][1], real), "%s: %s", bins[i][1], strerror(errno));
		snprintf(path, sizeof(path), "%s/%s", E.bin, bins[i][0]);
		cr_assert_eq(th_sh(NULL, &o, &e, 30, "cp '%s' '%s' && chmod 0755 '%s'", real, path, path),
		             0, "copying %s: %s", real, e ? e : "");
		free(o);
		free(e);
	}
	for (int i = 0; i < 2; i++) {
		struct wt_host *h = &E.h[i];
		h->id = i == 0 ? 'A' : 'B';
		snprintf(h->qm, sizeof(h->qm), "QM%d", i + 1);
		snprintf(h->label, sizeof(h->label), "qm%d", i + 1);
		snprintf(h->home, sizeof(h->home), "%s/host%c", E.root, h->id);
		wt_mkdir(h->home, 0700, E.drop);
		snprintf(h->ns, sizeof(h->ns), "chand-wt%d%c", pid, i == 0 ? 'a' : 'b');
		snprintf(h->veth, sizeof(h->veth), "wt%d%c", pid, i == 0 ? 'a' : 'b');
	}
	wt_guard_start();

	E.netns = geteuid() == 0 && wt_netns_up();
	if (E.netns) {
		E.h[0].mqtt_port = E.h[1].mqtt_port = WT_MQTT_PORT;
		fprintf(stderr, "walkthrough: host A in netns %s (%s), host B in netns %s (%s), "
		        "joined by veth %s/%s\n", E.h[0].ns, E.h[0].addr, E.h[1].ns, E.h[1].addr,
		        E.h[0].veth, E.h[1].veth);
		return;
	}
	wt_netns_down();
	for (int i = 0; i < 2; i++) {
		E.h[i].ns[0] = '\0';
		snprintf(E.h[i].addr, sizeof(E.h[i].addr), "127.0.0.1");
		E.h[i].port = th_free_port();
	}
	while (E.h[1].port == E.h[0].port)
		E.h[1].port = th_free_port();
	do
		E.h[0].mqtt_port = th_free_port();
	while (E.h[0].mqtt_port == E.h[0].port || E.h[0].mqtt_port == E.h[1].port);
	do
		E.h[1].mqtt_port = th_free_port();
	while (E.h[1].mqtt_port == E.h[0].port || E.h[1].mqtt_port == E.h[1].port ||
	       E.h[1].mqtt_port == E.h[0].mqtt_port);
	fprintf(stderr, "walkthrough: %s: falling back to both hosts on 127.0.0.1 (ports %d and %d, "
	        "MQTT %d and %d)\n", geteuid() == 0 ? "ip netns unavailable" : "not root",
	        E.h[0].port, E.h[1].port, E.h[0].mqtt_port, E.h[1].mqtt_port);
}

/* Runs script on host h: in its namespace, as nobody under root, with its
 * HOME, the binaries under test first on PATH and the settings exported;
 * in ~/chand once that exists. Returns the exit status (-1: timeout). */
static int wt_host_sh(struct wt_host *h, const char *script, char **out, char **err)
{
	char path[600], ns[80] = "", drop[120] = "";
	const char *envpath = getenv("PATH");

	snprintf(path, sizeof(path), "%s/scripts/%03d-%c.sh", E.root, ++E.nscript, h->id);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fprintf(f, "if [ -d \"$HOME/chand\" ]; then cd \"$HOME/chand\"; fi\n%s", script);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, 0644), 0);
	if (h->ns[0] != '\0')
		snprintf(ns, sizeof(ns), "ip netns exec '%s' ", h->ns);
	if (E.drop)
		snprintf(drop, sizeof(drop), "setpriv --reuid=%d --regid=%d --clear-groups ", WT_NOBODY,
		         WT_NOBODY);
	return th_sh(NULL, out, err, WT_BLOCK_TIMEOUT,
	             "cd '%s' && exec %s%senv HOME='%s' PATH='%s:%s' A_HOST='%s' A_PORT='%d' "
	             "B_HOST='%s' B_PORT='%d' A_MQTT_PORT='%d' B_MQTT_PORT='%d' sh -e '%s'", h->home,
	             ns, drop, h->home, E.bin, envpath ? envpath : "/usr/bin:/bin", E.h[0].addr,
	             E.h[0].port, E.h[1].addr, E.h[1].port, E.h[0].mqtt_port, E.h[1].mqtt_port, path);
}

static void wt_dump_logs(void)
{
	for (int i = 0; i < 2; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/chand/chand.log", E.h[i].home);
		char *log = th_read_file(path);
		size_t n = log ? strlen(log) : 0;
		fprintf(stderr, "==== host %c %s (tail):\n%s\n", E.h[i].id, path,
		        log == NULL ? "(none)" : n > 4000 ? log + n - 4000 : log);
		free(log);
	}
}

/* ---- what the test checks around the blocks ---- */

static json_t *wt_json(struct wt_host *h, const char *args)
{
	char script[300], *out = NULL, *err = NULL;
	json_t *v = NULL;

	snprintf(script, sizeof(script), "chanctl -c chand.conf --json %s\n", args);
	int rc = wt_host_sh(h, script, &out, &err);
	if (rc == 0 && out != NULL) {
		json_error_t je;
		v = json_loads(out, JSON_DECODE_ANY, &je);
	}
	if (v == NULL || !json_is_array(v))
		fprintf(stderr, "host %c: chanctl --json %s: exit %d\n%s%s", h->id, args, rc,
		        out ? out : "", err ? err : "");
	free(out);
	free(err);
	return v;
}

/* The object named name in the JSON array of `chanctl --json args`. */
static json_t *wt_json_named(struct wt_host *h, const char *args, const char *name)
{
	json_t *arr = wt_json(h, args), *o, *found = NULL;
	size_t i;

	json_array_foreach(arr, i, o) {
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n != NULL && strcmp(n, name) == 0)
			found = json_incref(o);
	}
	json_decref(arr);
	return found;
}

static const char *wt_js(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long wt_ji(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static json_t *wt_status(struct wt_host *h)
{
	return wt_json_named(h, "status " WT_CHANNEL, WT_CHANNEL);
}

static long wt_depth(struct wt_host *h, const char *queue)
{
	char args[100];

	snprintf(args, sizeof(args), "display queue %s", queue);
	json_t *q = wt_json_named(h, args, queue);
	long d = q ? (long)wt_ji(q, "curdepth") : -1;
	json_decref(q);
	return d;
}

static bool wt_wait_depth(struct wt_host *h, const char *queue, long want, int timeout_ms)
{
	long d = -1;

	for (int waited = 0; waited <= timeout_ms; waited += 200) {
		if ((d = wt_depth(h, queue)) == want)
			return true;
		usleep(200000);
	}
	fprintf(stderr, "host %c: %s has depth %ld, wanted %ld\n", h->id, queue, d, want);
	return false;
}

static json_t *wt_wait_state(struct wt_host *h, const char *state, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 200) {
		json_t *st = wt_status(h);
		if (st != NULL && strcmp(wt_js(st, "state"), state) == 0)
			return st;
		if (waited + 200 > timeout_ms) {
			char *d = st ? json_dumps(st, JSON_COMPACT) : NULL;
			fprintf(stderr, "host %c: %s not %s: %s\n", h->id, WT_CHANNEL, state,
			        d ? d : "(no status)");
			free(d);
		}
		json_decref(st);
		usleep(200000);
	}
	return NULL;
}

/* The lines of a block's <<'EOF' here-document, each ending in '\n'. */
static char *wt_heredoc(const struct wt_block *b, const char *what)
{
	const char *p = strstr(b->text, "<<'EOF'\n");
	cr_assert_not_null(p, "README.md line %d: the %s block must give its messages in a "
	                   "<<'EOF' here-document", b->line, what);
	p = strchr(p, '\n') + 1;
	const char *end = strstr(p, "\nEOF\n");
	cr_assert_not_null(end, "README.md line %d: here-document without EOF", b->line);
	char *lines = strndup(p, (size_t)(end - p) + 1);
	cr_assert_not_null(lines);
	cr_assert_gt(th_count(lines, "\n"), 0, "README.md line %d: empty here-document", b->line);
	return lines;
}

/* The lines of the put block's here-document: what B must receive. */
static void wt_expect_from_put(const struct wt_block *b)
{
	free(E.expected);
	E.expected = wt_heredoc(b, "put");
	E.nexpected = th_count(E.expected, "\n");
}

/* The publish block: mosquitto_pub -t TOPIC ... -l <<'EOF' (one message
 * per line). What `mosquitto_sub -v` must print: "TOPIC LINE" per line. */
static void wt_expect_from_publish(const struct wt_block *b)
{
	const char *t = strstr(b->text, " -t ");
	cr_assert(strstr(b->text, "mosquitto_pub ") != NULL && strstr(b->text, " -l ") != NULL &&
	          t != NULL, "README.md line %d: the publish block is 'mosquitto_pub ... -t TOPIC "
	          "... -l <<'EOF'' (one message per line)", b->line);
	t += 4;
	size_t tlen = strcspn(t, " \\\n");
	cr_assert_gt(tlen, 0);
	cr_assert(t[0] != '\'' && t[0] != '"', "README.md line %d: give the topic unquoted", b->line);
	char *lines = wt_heredoc(b, "publish"), *save = NULL;
	FILE *f;
	size_t len = 0;

	free(E.mqtt_expected);
	E.mqtt_expected = NULL;
	f = open_memstream(&E.mqtt_expected, &len);
	cr_assert_not_null(f);
	E.nmqtt = 0;
	for (char *l = strtok_r(lines, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		fprintf(f, "%.*s %s\n", (int)tlen, t, l);
		E.nmqtt++;
	}
	cr_assert_eq(fclose(f), 0);
	free(lines);
}

/* The word after opt (" -i ") in a block: the subscriber's client id. */
static char *wt_word_after(const struct wt_block *b, const char *opt)
{
	const char *p = strstr(b->text, opt);

	cr_assert_not_null(p, "README.md line %d: the block has no '%s'", b->line, opt);
	p += strlen(opt);
	size_t n = strcspn(p, " \\\n");
	cr_assert_gt(n, 0, "README.md line %d: nothing after '%s'", b->line, opt);
	cr_assert(p[0] != '\'' && p[0] != '"', "README.md line %d: give the value of '%s' unquoted",
	          b->line, opt);
	char *w = strndup(p, n);
	cr_assert_not_null(w);
	return w;
}

/* h's telemetry channel after the subscriber client got everything: the
 * record, and client's persistent session from status --clients. The
 * publisher was a client of A (step 7 and 8), so only A counts the
 * publications as received from its clients; B got them by channel. */
static void wt_check_mqtt_status(struct wt_host *h, const char *client)
{
	json_t *st = wt_json_named(h, "status " WT_MQTT_CHANNEL " --clients", WT_MQTT_CHANNEL);
	json_t *cl, *c, *sub = NULL;
	long long received = h->id == 'A' ? E.nmqtt : 0;
	size_t i;

	cr_assert_not_null(st, "host %c: no status for %s", h->id, WT_MQTT_CHANNEL);
	cr_expect_str_eq(wt_js(st, "type"), "mqtt");
	cr_expect_str_eq(wt_js(st, "state"), "RUNNING");
	cr_expect_str_eq(wt_js(st, "local_label"), "broker");
	cr_expect_eq(wt_ji(st, "port"), h->mqtt_port);
	cr_expect_eq(wt_ji(st, "msgs_received"), received, "host %c: msgs_received %lld, expected "
	             "%lld", h->id, wt_ji(st, "msgs_received"), received);
	cr_expect_eq(wt_ji(st, "msgs_sent"), E.nmqtt, "host %c: msgs_sent %lld, published %ld",
	             h->id, wt_ji(st, "msgs_sent"), E.nmqtt);
	cl = json_object_get(st, "clients");
	cr_assert(json_is_array(cl), "status --clients has no clients array");
	json_array_foreach(cl, i, c)
		if (strcmp(wt_js(c, "client_id"), client) == 0)
			sub = c;
	cr_assert_not_null(sub, "host %c: the persistent session of %s is not in status --clients",
	                   h->id, client);
	cr_expect_eq(wt_ji(sub, "msgs_sent"), E.nmqtt);
	cr_expect_eq(wt_ji(sub, "pending"), 0, "host %c: %s still has %lld pending", h->id, client,
	             wt_ji(sub, "pending"));
	json_decref(st);
}

/* A's route after the publish of step 8: every publication matched and
 * forwarded, none dropped. The counters move in the transaction before
 * the publisher's acknowledgement; the wait (bounded) only spares a
 * slow machine a false failure. */
static void wt_check_route(struct wt_host *h)
{
	json_t *arr = NULL, *r = NULL;

	cr_assert_not_null(E.mqtt_expected, "the route check before a publish");
	for (int waited = 0; waited <= 5000; waited += 200) {
		json_decref(arr);
		arr = wt_json(h, "display route");
		r = json_array_get(arr, 0);
		if (json_array_size(arr) == 1 && wt_ji(r, "forwarded") >= E.nmqtt)
			break;
		usleep(200000);
	}
	cr_assert_eq(json_array_size(arr), 1, "host %c: display route lists %zu routes, not 1",
	             h->id, json_array_size(arr));
	cr_expect_str_eq(wt_js(r, "qmgr"), "QM2");
	cr_expect_eq(wt_ji(r, "matched"), E.nmqtt, "matched %lld, published %ld",
	             wt_ji(r, "matched"), E.nmqtt);
	cr_expect_eq(wt_ji(r, "forwarded"), E.nmqtt, "forwarded %lld, published %ld",
	             wt_ji(r, "forwarded"), E.nmqtt);
	cr_expect_eq(wt_ji(r, "dropped"), 0);
	cr_expect_eq(wt_ji(r, "loops_prevented"), 0);
	json_decref(arr);
}

enum {
	WT_CK_PUT = 1, WT_CK_GET = 2, WT_CK_STATUS_A = 4, WT_CK_STATUS_B = 8, WT_CK_REFUSED = 16,
	WT_CK_RESTARTED = 32, WT_CK_STOPPED_A = 64, WT_CK_STOPPED_B = 128, WT_CK_PUBLISH = 256,
	WT_CK_SUBSCRIBE_A = 512, WT_CK_ROUTE = 1024, WT_CK_SUBSCRIBE_B = 2048, WT_CK_ALL = 4095,
};

static void wt_check_status(struct wt_host *h)
{
	struct wt_host *peer = h->id == 'A' ? &E.h[1] : &E.h[0];
	char peer_dn[64], conname[80];
	json_t *st = wt_status(h);

	cr_assert_not_null(st, "host %c: no status for %s", h->id, WT_CHANNEL);
	snprintf(peer_dn, sizeof(peer_dn), "CN=%s,O=Acme,C=GB", peer->qm);
	cr_expect_str_eq(wt_js(st, "state"), "RUNNING", "host %c", h->id);
	cr_expect_str_eq(wt_js(st, "tls_version"), "TLS1.3", "host %c", h->id);
	cr_expect_str_eq(wt_js(st, "peer_dn"), peer_dn, "host %c", h->id);
	cr_expect_str_eq(wt_js(st, "peer_issuer_dn"), "CN=Acme Walkthrough CA,O=Acme,C=GB",
	                 "host %c", h->id);
	cr_expect_str_eq(wt_js(st, "local_label"), h->label, "host %c", h->id);
	cr_expect_str_eq(wt_js(st, "rqmname"), peer->qm, "host %c", h->id);
	cr_expect_eq(wt_ji(st, "msgs"), E.nexpected, "host %c: msgs %lld, sent %ld", h->id,
	             wt_ji(st, "msgs"), E.nexpected);
	if (h->id == 'A') {
		/* The sender really went to B's address over the link. */
		snprintf(conname, sizeof(conname), "%s:%d", peer->addr, peer->port);
		cr_expect_str_eq(wt_js(st, "conname"), conname);
	}
	json_decref(st);
}

static void wt_check(const struct wt_block *b, struct wt_host *h, const char *out)
{
	if (strcmp(b->check, "put") == 0) {
		wt_expect_from_put(b);
		E.checks_done |= WT_CK_PUT;
	} else if (strcmp(b->check, "get") == 0) {
		cr_assert_not_null(E.expected, "README.md line %d: get before put", b->line);
		/* Exactly once, in order: what was put, nothing more. */
		cr_assert_str_eq(out, E.expected, "host %c got other messages than A put", h->id);
		cr_assert_eq(wt_depth(h, "PAYMENTS"), 0);
		cr_assert(wt_wait_depth(&E.h[0], "QM2", 0, 20000), "A's transmission queue not empty");
		E.checks_done |= WT_CK_GET;
	} else if (strcmp(b->check, "status") == 0) {
		wt_check_status(h);
		E.checks_done |= h->id == 'A' ? WT_CK_STATUS_A : WT_CK_STATUS_B;
	} else if (strcmp(b->check, "refused") == 0) {
		json_t *st = wt_status(&E.h[1]);
		cr_assert_not_null(st);
		cr_expect_str_eq(wt_js(st, "last_error_code"), "CHD4005");
		cr_expect(strstr(wt_js(st, "last_error"), "CN=QM1,O=Acme,C=GB") != NULL,
		          "B's last_error does not name the peer DN: %s", wt_js(st, "last_error"));
		json_decref(st);
		cr_expect(strstr(out, "CHD4005") != NULL && strstr(out, "SSLPEER mismatch") != NULL,
		          "host %c: the refusal block printed no CHD4005 / explanation:\n%s", h->id, out);
		E.checks_done |= WT_CK_REFUSED;
	} else if (strcmp(b->check, "restarted") == 0) {
		json_t *st = wt_wait_state(&E.h[0], "RUNNING", 30000);
		cr_assert_not_null(st, "A's channel did not run again");
		cr_expect_str_eq(wt_js(st, "peer_dn"), "CN=QM2,O=Acme,C=GB");
		json_decref(st);
		st = wt_wait_state(&E.h[1], "RUNNING", 30000);
		cr_assert_not_null(st, "B's channel did not run again");
		json_decref(st);
		/* Nothing sent twice after the restart, nothing dead-lettered. */
		cr_expect_eq(wt_depth(&E.h[1], "PAYMENTS"), 0, "B's PAYMENTS is not empty");
		cr_expect_eq(wt_depth(&E.h[1], "DLQ"), 0, "B's DLQ is not empty");
		cr_expect_eq(wt_depth(&E.h[0], "DLQ"), 0, "A's DLQ is not empty");
		cr_expect_eq(wt_depth(&E.h[0], "QM2"), 0, "A's transmission queue is not empty");
		E.checks_done |= WT_CK_RESTARTED;
	} else if (strcmp(b->check, "publish") == 0) {
		wt_expect_from_publish(b);
		E.checks_done |= WT_CK_PUBLISH;
	} else if (strcmp(b->check, "subscribe") == 0) {
		cr_assert_not_null(E.mqtt_expected, "README.md line %d: subscribe before publish",
		                   b->line);
		/* Each publication once, in order, with its topic: nothing more. */
		cr_assert_str_eq(out, E.mqtt_expected, "host %c: the subscriber got other messages "
		                 "than were published", h->id);
		char *client = wt_word_after(b, " -i ");
		wt_check_mqtt_status(h, client);
		free(client);
		if (h->id == 'B') {
			/* By the route, over the channel: nothing left on the way. */
			cr_assert(E.checks_done & WT_CK_ROUTE, "README.md line %d: the subscriber on B "
			          "before A's route was checked", b->line);
			cr_expect(wt_wait_depth(&E.h[0], "QM2", 0, 20000),
			          "A's transmission queue not empty");
			cr_expect_eq(wt_depth(&E.h[1], "SYSTEM.MQTT.PUBLISH"), 0);
			cr_expect_eq(wt_depth(&E.h[1], "DLQ"), 0, "B's DLQ is not empty");
		}
		E.checks_done |= h->id == 'A' ? WT_CK_SUBSCRIBE_A : WT_CK_SUBSCRIBE_B;
	} else if (strcmp(b->check, "route") == 0) {
		wt_check_route(h);
		E.checks_done |= WT_CK_ROUTE;
	} else if (strcmp(b->check, "stopped") == 0) {
		cr_assert(wt_wait_unlocked(h, 30000), "host %c: the agent did not stop on SIGTERM",
		          h->id);
		E.checks_done |= h->id == 'A' ? WT_CK_STOPPED_A : WT_CK_STOPPED_B;
	} else {
		cr_assert_fail("README.md line %d: unknown check '%s'", b->line, b->check);
	}
}

/* What an operator's pace gives for free: the responder records a refusal
 * after it has sent the alert and drained the connection (doc/TLS.md), so
 * the initiator's ping can return a moment before the responder's status
 * shows it. Wait (bounded) for that before running the status block; the
 * check after the block still fails if it never shows. */
static void wt_before(const struct wt_block *b)
{
	if (strcmp(b->check, "refused") != 0)
		return;
	for (int waited = 0; waited <= 10000; waited += 100) {
		json_t *st = wt_status(&E.h[1]);
		bool seen = st != NULL && strcmp(wt_js(st, "last_error_code"), "CHD4005") == 0;
		json_decref(st);
		if (seen)
			return;
		usleep(100000);
	}
}

/* ---- output blocks ---- */

/* Whitespace runs become one space, digit runs one '#'. */
static char *wt_norm(const char *s)
{
	char *r = malloc(strlen(s) + 1), *o = r;

	cr_assert_not_null(r);
	while (*s == ' ' || *s == '\t')
		s++;
	while (*s != '\0') {
		if (*s == ' ' || *s == '\t') {
			while (*s == ' ' || *s == '\t')
				s++;
			if (*s != '\0')
				*o++ = ' ';
		} else if (*s >= '0' && *s <= '9') {
			while (*s >= '0' && *s <= '9')
				s++;
			*o++ = '#';
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return r;
}

/* want (normalized) matches got (normalized) if the pieces of want
 * between "..." occur in got in order. */
static bool wt_line_matches(const char *want, const char *got)
{
	char *w = strdup(want);
	const char *at = got;
	bool ok = true;

	cr_assert_not_null(w);
	for (char *piece = w; ok && piece != NULL; ) {
		char *dots = strstr(piece, "...");
		if (dots != NULL)
			*dots = '\0';
		char *pc = wt_trim(piece);
		if (*pc != '\0') {
			const char *f = strstr(at, pc);
			if (f == NULL)
				ok = false;
			else
				at = f + strlen(pc);
		}
		piece = dots != NULL ? dots + 3 : NULL;
	}
	free(w);
	return ok;
}

static void wt_check_output(const struct wt_block *shown, const struct wt_block *cmd,
                            const char *out, const char *err)
{
	char *actual = NULL, *want = strdup(shown->text), *wsave = NULL;

	cr_assert_geq(asprintf(&actual, "%s%s", out ? out : "", err ? err : ""), 0);
	for (char *wl = strtok_r(want, "\n", &wsave); wl != NULL; wl = strtok_r(NULL, "\n", &wsave)) {
		char *wt = wt_trim(wl);
		if (*wt == '\0' || strcmp(wt, "...") == 0)
			continue;
		char *wn = wt_norm(wt), *copy = strdup(actual), *asave = NULL;
		bool found = false;
		for (char *al = strtok_r(copy, "\n", &asave); al != NULL && !found;
		     al = strtok_r(NULL, "\n", &asave)) {
			char *an = wt_norm(al);
			found = wt_line_matches(wn, an);
			free(an);
		}
		cr_expect(found, "README.md line %d: the output shown for the block at line %d has\n"
		          "  %s\nbut the block printed:\n%s", shown->line, cmd->line, wt, actual);
		free(copy);
		free(wn);
	}
	free(want);
	free(actual);
}

/* ---- copy blocks ---- */

static void wt_copy_file(const struct wt_block *b, struct wt_host *from, struct wt_host *to,
                         const char *name)
{
	char src[700], dst[700], buf[8192];
	struct stat st;
	ssize_t n;

	for (const char *c = name; *c != '\0'; c++)
		cr_assert(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c),
		          "README.md line %d: copy a plain file name, not '%s'", b->line, name);
	snprintf(src, sizeof(src), "%s/chand/%s", from->home, name);
	snprintf(dst, sizeof(dst), "%s/chand/%s", to->home, name);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "README.md line %d: host %c has no %s to copy", b->line, from->id, name);
	cr_assert_eq(fstat(in, &st), 0);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
	cr_assert_geq(out, 0, "%s: %s", dst, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n, "%s: %s", dst, strerror(errno));
	cr_assert_eq(n, 0, "%s: %s", src, strerror(errno));
	if (E.drop)
		cr_assert_eq(fchown(out, WT_NOBODY, WT_NOBODY), 0);
	cr_assert_eq(close(out), 0);
	close(in);
}

/* Each line: scp FILE... "$X_HOST:chand/" */
static void wt_copy(const struct wt_block *b)
{
	struct wt_host *from = wt_host(b->hosts == WT_A ? 'A' : 'B');
	char *text = strdup(b->text), *lsave = NULL;
	int copied = 0;

	for (char *l = strtok_r(text, "\n", &lsave); l != NULL; l = strtok_r(NULL, "\n", &lsave)) {
		char *words[16], *wsave = NULL;
		int n = 0;
		l = wt_trim(l);
		if (*l == '\0' || *l == '#')
			continue;
		for (char *w = strtok_r(l, " ", &wsave); w != NULL && n < 16; w = strtok_r(NULL, " ", &wsave))
			words[n++] = w;
		cr_assert(n >= 3 && strcmp(words[0], "scp") == 0, "README.md line %d: a copy block "
		          "holds only 'scp FILE... \"$A_HOST:chand/\"' lines", b->line);
		const char *dest = words[n - 1];
		char to_id = strcmp(dest, "\"$A_HOST:chand/\"") == 0 ? 'A' :
		             strcmp(dest, "\"$B_HOST:chand/\"") == 0 ? 'B' : '?';
		cr_assert(to_id != '?' && to_id != from->id, "README.md line %d: copy to \"$A_HOST:chand/\" "
		          "or \"$B_HOST:chand/\" (the other host), not %s", b->line, dest);
		for (int i = 1; i < n - 1; i++, copied++)
			wt_copy_file(b, from, wt_host(to_id), words[i]);
	}
	cr_assert_gt(copied, 0, "README.md line %d: empty copy block", b->line);
	free(text);
}

/* ---- the run ---- */

static void wt_check_settings(const struct wt_block *b)
{
	static const char *const names[] = { "A_HOST", "A_PORT", "B_HOST", "B_PORT", "A_MQTT_PORT",
	                                     "B_MQTT_PORT" };
	enum { NNAMES = sizeof(names) / sizeof(names[0]) };
	char *text = strdup(b->text), *save = NULL;
	unsigned seen = 0;

	/* The test supplies these values; the block must set exactly these names. */
	for (char *w = strtok_r(text, " \n", &save); w != NULL; w = strtok_r(NULL, " \n", &save)) {
		if (*w == '#') {
			strtok_r(NULL, "\n", &save);
			continue;
		}
		if (strcmp(w, "export") == 0)
			continue;
		char *eq = strchr(w, '=');
		cr_assert_not_null(eq, "README.md line %d: settings are 'export NAME=VALUE ...' (%s)",
		                   b->line, w);
		*eq = '\0';
		size_t i;
		for (i = 0; i < NNAMES && strcmp(w, names[i]) != 0; i++)
			;
		cr_assert_lt(i, NNAMES, "README.md line %d: the test does not know setting %s", b->line,
		             w);
		seen |= 1u << i;
	}
	cr_assert_eq(seen, (1u << NNAMES) - 1, "README.md line %d: settings must give A_HOST A_PORT "
	             "B_HOST B_PORT A_MQTT_PORT B_MQTT_PORT", b->line);
	free(text);
}

static void wt_run(enum wt_variant variant)
{
	char path[600];
	struct wt_doc doc;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(path, sizeof(path), "%s/README.md", wt_srcdir());
	char *readme = th_read_file(path);
	cr_assert_not_null(readme, "cannot read %s (set TEST_SRCDIR)", path);
	wt_parse(readme, &doc);
	free(readme);
	cr_assert_gt(doc.n, 10, "README.md: too few walkthrough blocks");
	wt_setup();

	const struct wt_block *last_cmd = NULL;
	char *last_out = NULL, *last_err = NULL;
	int nrun = 0;
	bool settings = false, prev_skipped = false;
	for (size_t i = 0; i < doc.n; i++) {
		const struct wt_block *b = &doc.v[i];
		if (b->variant != WT_ANY && b->variant != variant) {
			if (b->kind != WT_OUTPUT)
				prev_skipped = true;
			continue;
		}
		if (b->kind == WT_SETTINGS) {
			wt_check_settings(b);
			settings = true;
			continue;
		}
		if (b->kind == WT_OUTPUT) {
			if (prev_skipped)
				continue;   /* the output of a block of the other variant */
			cr_assert_not_null(last_cmd, "README.md line %d: output shown after a block that "
			                   "runs on both hosts or copies files", b->line);
			wt_check_output(b, last_cmd, last_out, last_err);
			continue;
		}
		prev_skipped = false;
		cr_assert(settings, "README.md line %d: a block before the settings", b->line);
		free(last_out);
		free(last_err);
		last_out = last_err = NULL;
		last_cmd = b->hosts == (WT_A | WT_B) ? NULL : b;
		if (b->kind == WT_COPY) {
			wt_copy(b);
			last_cmd = NULL;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct wt_host *h = &E.h[k];
			if (!(b->hosts & (k == 0 ? WT_A : WT_B)))
				continue;
			free(last_out);
			free(last_err);
			last_out = last_err = NULL;
			wt_before(b);
			int rc = wt_host_sh(h, b->text, &last_out, &last_err);
			nrun++;
			if (rc != b->exit_code)
				wt_dump_logs();
			cr_assert_eq(rc, b->exit_code, "README.md line %d, host %c: exit %d, expected %d "
			             "(-1: timed out after %d s)\n--- block:\n%s--- stdout:\n%s--- stderr:\n%s",
			             b->line, h->id, rc, b->exit_code, WT_BLOCK_TIMEOUT, b->text,
			             last_out ? last_out : "", last_err ? last_err : "");
			if (b->check[0] != '\0')
				wt_check(b, h, last_out ? last_out : "");
		}
	}
	free(last_out);
	free(last_err);
	cr_assert_eq(E.checks_done, (unsigned)WT_CK_ALL, "README.md: the walkthrough lost a checked "
	             "step (put, get, status on A and B, refused, restarted, publish, subscribe on "
	             "A, route, subscribe on B, stopped on A and B): checks done 0x%x",
	             E.checks_done);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "walkthrough (%s): %d blocks run in %.1f s, %s\n",
	        variant == WT_OPENSSL ? "openssl" : "certtool", nrun,
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	        E.netns ? "two network namespaces" : "loopback");
	wt_doc_free(&doc);
}

/* Same timeout for every test of the binary (see doc/TLS.md, Tests). */
Test(walkthrough, openssl, .timeout = 180, .fini = wt_fini)
{
	wt_run(WT_OPENSSL);
}

Test(walkthrough, certtool, .timeout = 180, .fini = wt_fini)
{
	wt_run(WT_CERTTOOL);
}

/* The extraction itself, without running anything: every block tagged,
 * both certificate variants present, the checked steps all there. */
Test(walkthrough, readme_blocks, .timeout = 180)
{
	char path[600];
	struct wt_doc doc;
	int blocks[3] = { 0, 0, 0 }, copies[3] = { 0, 0, 0 };

	snprintf(path, sizeof(path), "%s/README.md", wt_srcdir());
	char *readme = th_read_file(path);
	cr_assert_not_null(readme, "cannot read %s", path);
	wt_parse(readme, &doc);
	free(readme);
	for (size_t i = 0; i < doc.n; i++) {
		const struct wt_block *b = &doc.v[i];
		blocks[b->variant]++;
		copies[b->variant] += b->kind == WT_COPY;
		if (b->kind == WT_RUN)
			cr_expect(strstr(b->text, "build/") == NULL, "README.md line %d: the walkthrough "
			          "uses plain chand and chanctl, not build paths", b->line);
	}
	cr_expect_gt(blocks[WT_OPENSSL], 0, "no OpenSSL certificate blocks");
	cr_expect_gt(blocks[WT_CERTTOOL], 0, "no certtool certificate blocks");
	/* Each variant moves the CSR to the CA and the certificates back; step
	 * 8 does the same for B's telemetry certificate, in both variants. */
	cr_expect_geq(copies[WT_OPENSSL], 2);
	cr_expect_geq(copies[WT_CERTTOOL], 2);
	cr_expect_geq(copies[WT_ANY], 2, "no copies of B's telemetry certificate (step 8)");
	wt_doc_free(&doc);
}
