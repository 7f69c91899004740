/* A small background thread that wakes at an interval until it is
 * stopped (ops_int.h): the expiry warnings and the memory thread. */
#include <string.h>
#include <time.h>

#include "ops_int.h"
#include "chand/codes.h"
#include "chand/log.h"

int ticker_start(struct ticker *t, void *(*fn)(void *), void *arg, const char *what)
{
	pthread_condattr_t ca;
	int rc;

	t->stop = false;
	pthread_mutex_init(&t->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&t->thread, NULL, fn, arg);
	if (rc != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "cannot start the %s thread: %s", what,
		          strerror(rc));
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mtx);
		return -1;
	}
	t->started = true;
	return 0;
}

bool ticker_sleep(struct ticker *t, int ms)
{
	struct timespec ts;
	bool go;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&t->mtx);
	if (!t->stop)
		pthread_cond_timedwait(&t->cond, &t->mtx, &ts);
	go = !t->stop;
	pthread_mutex_unlock(&t->mtx);
	return go;
}

void ticker_stop(struct ticker *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->mtx);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mtx);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mtx);
	t->started = false;
}
