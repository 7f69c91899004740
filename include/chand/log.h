/* Logging: one line per event, "TIME QMGR LEVEL CODE key=value... text".
 * Every event that an operator may act on carries a stable CHDnnnn code
 * (see codes.h); debug chatter may pass NULL as the code. */
#ifndef CHAND_LOG_H
#define CHAND_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { CHLOG_ERROR = 0, CHLOG_WARN = 1, CHLOG_INFO = 2, CHLOG_DEBUG = 3 };

struct log_config {
	const char *ident;  /* queue manager name, printed on each line */
	int level;          /* enum log_level */
	bool to_stderr;
	bool to_syslog;
	const char *file;   /* NULL or "" for none */
};

/* Returns 0, or -1 with a one-line reason in err. Safe to call again
 * (reconfigure / reopen after rotation). */
int log_open(const struct log_config *cfg, char *err, size_t errlen);
void log_close(void);
void log_set_level(int level);
int log_get_level(void);
/* "error", "warn"/"warning", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

void log_msg(int level, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(code, ...) log_msg(CHLOG_ERROR, (code), __VA_ARGS__)
#define log_warn(code, ...)  log_msg(CHLOG_WARN, (code), __VA_ARGS__)
#define log_info(code, ...)  log_msg(CHLOG_INFO, (code), __VA_ARGS__)
#define log_debug(...)       log_msg(CHLOG_DEBUG, NULL, __VA_ARGS__)

/* A broken internal invariant: log and abort. */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
