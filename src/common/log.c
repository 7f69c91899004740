#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "chand/log.h"
#include "chand/util.h"

/* One mutex serialises lines from channel threads so they never interleave. */
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
/* read by every thread on every line, set by SIGHUP/admin: atomic */
static atomic_int log_level = CHLOG_INFO;
static bool log_stderr = true;
static bool log_syslog;
static FILE *log_fp;
static char log_ident[64] = "chand";

static const char *level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int log_open(const struct log_config *cfg, char *err, size_t errlen)
{
	FILE *fp = NULL;

	if (cfg->file != NULL && cfg->file[0] != '\0') {
		fp = fopen(cfg->file, "ae");
		if (fp == NULL) {
			snprintf(err, errlen, "cannot open log file %s: %s", cfg->file, strerror(errno));
			return -1;
		}
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&log_mtx);
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = fp;
	if (cfg->ident != NULL)
		str_copy(log_ident, cfg->ident, sizeof(log_ident));
	atomic_store(&log_level, cfg->level);
	log_stderr = cfg->to_stderr;
	if (cfg->to_syslog && !log_syslog)
		openlog("chand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!cfg->to_syslog && log_syslog)
		closelog();
	log_syslog = cfg->to_syslog;
	pthread_mutex_unlock(&log_mtx);
	return 0;
}

void log_close(void)
{
	pthread_mutex_lock(&log_mtx);
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = NULL;
	if (log_syslog)
		closelog();
	log_syslog = false;
	pthread_mutex_unlock(&log_mtx);
}

void log_set_level(int level) { atomic_store(&log_level, level); }
int log_get_level(void) { return atomic_load(&log_level); }

int log_level_parse(const char *s)
{
	if (strcasecmp(s, "error") == 0)
		return CHLOG_ERROR;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return CHLOG_WARN;
	if (strcasecmp(s, "info") == 0)
		return CHLOG_INFO;
	if (strcasecmp(s, "debug") == 0)
		return CHLOG_DEBUG;
	return -1;
}

const char *log_level_name(int level)
{
	return level >= 0 && level <= CHLOG_DEBUG ? level_names[level] : "?";
}

static void log_vmsg(int level, const char *code, const char *fmt, va_list ap)
{
	char text[2048], stamp[40];
	static const int sysprio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	if (level > atomic_load(&log_level))
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	/* Log lines are one line each: fold any newline a peer managed to
	 * smuggle into a DN or error string. */
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	time_format_ms(time_now_ms(), stamp, sizeof(stamp));
	pthread_mutex_lock(&log_mtx);
	if (log_stderr)
		fprintf(stderr, "%s %s %s %s %s\n", stamp, log_ident, level_names[level],
		        code ? code : "-", text);
	if (log_fp != NULL)
		fprintf(log_fp, "%s %s %s %s %s\n", stamp, log_ident, level_names[level],
		        code ? code : "-", text);
	if (log_syslog)
		syslog(sysprio[level], "%s %s %s", log_ident, code ? code : "-", text);
	pthread_mutex_unlock(&log_mtx);
}

void log_msg(int level, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, code, fmt, ap);
	va_end(ap);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(CHLOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	abort();
}
