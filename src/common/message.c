#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "chand/message.h"

void msg_clear(struct chd_msg *m)
{
	free(m->props);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

int msg_copy(struct chd_msg *dst, const struct chd_msg *src)
{
	*dst = *src;
	dst->props = NULL;
	dst->body = NULL;
	if (src->props != NULL && (dst->props = strdup(src->props)) == NULL)
		return -1;
	dst->body = malloc(src->body_len ? src->body_len : 1);
	if (dst->body == NULL) {
		free(dst->props);
		dst->props = NULL;
		return -1;
	}
	if (src->body_len)
		memcpy(dst->body, src->body, src->body_len);
	return 0;
}

struct chd_msg *msg_list_add(struct msg_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct chd_msg *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

void msg_list_free(struct msg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		msg_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

void msg_new_id(uint8_t id[MSG_ID_LEN])
{
	static _Atomic uint64_t counter;
	static uint8_t salt[8];
	static _Atomic int salted;
	uint64_t t = (uint64_t)time_now_ms();
	uint64_t c = atomic_fetch_add(&counter, 1);

	if (!atomic_load(&salted)) {
		if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
			memcpy(salt, &t, sizeof(salt));
		atomic_store(&salted, 1);
	}
	for (int i = 0; i < 8; i++) {
		id[i] = (uint8_t)(t >> (56 - 8 * i));
		id[8 + i] = (uint8_t)(c >> (56 - 8 * i));
	}
	memcpy(id + 16, salt, 8);
}

bool msg_id_is_zero(const uint8_t id[MSG_ID_LEN])
{
	for (int i = 0; i < MSG_ID_LEN; i++)
		if (id[i])
			return false;
	return true;
}
