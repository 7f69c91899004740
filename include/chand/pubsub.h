/* MQTT topic names and filters, matching, and a subscription tree
 * (doc/TELEMETRY.md; MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7
 * and 4.8.2).
 *
 * Pure: no I/O, no logging, no global state.  The topic_* functions are
 * safe from any thread.  A struct subtree is not locked: one writer at a
 * time; subtree_match() only reads, so several threads may match
 * concurrently when nobody modifies the tree.
 *
 * Strings are byte strings with an explicit length (the codec has already
 * checked UTF-8); a NUL byte inside one is an error.  Levels are split on
 * '/': "a//b" has levels "a", "", "b"; "/" has two empty levels.
 *
 * Shared subscriptions ("$share/GROUP/FILTER", MQTT 5.0 4.8.2) are
 * recognised whenever the filter starts with the 7 bytes "$share/", for
 * every protocol version.  They match the topics their inner FILTER
 * matches (topic_match, the tree); the subscription tree keeps them under
 * the inner filter and reports them with their full filter string, so the
 * match callback sees e.g. "$share/g1/sensors/+" and the caller uses
 * topic_filter_shared() on it to learn the group and deliver to one member
 * per group. */
#ifndef CHAND_PUBSUB_H
#define CHAND_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest topic name or filter: a UTF-8 string's length field is 16 bits. */
#define TOPIC_MAX_LEN 65535
/* Deepest filter subtree_add() accepts (levels).  Matching recurses once per
 * '+' level of the filters in the tree, so the tree's depth is bounded
 * (mosquitto caps topic hierarchies at 200 levels). */
#define SUBTREE_MAX_LEVELS 1024

/* ---- topic names and filters ---- */

/* 0 if valid; else -1 with *errpos (0-based byte offset of the problem)
 * and *why (static text).  errpos and why may be NULL.
 * Name: not empty, no '+' or '#', at most 65535 bytes, no NUL
 * ([MQTT-4.7.3-1], [MQTT-4.7.3-2], [MQTT-4.7.3-3], [MQTT-4.7.1-1]).
 * A name starting with '$' is valid here; whether a client may publish
 * to it is the caller's policy. */
int topic_name_check(const char *t, size_t len, size_t *errpos, const char **why);
/* Filter: not empty; '#' only as the whole last level; '+' only as a
 * whole level; no NUL; at most 65535 bytes ([MQTT-4.7.1-2], [MQTT-4.7.1-3]).
 * "$share/GROUP/FILTER" must have a non-empty GROUP without '/', '+', '#'
 * and a valid non-empty FILTER ([MQTT-4.8.2-1], [MQTT-4.8.2-2]); positions
 * of errors in FILTER are offsets in the whole string. */
int topic_filter_check(const char *f, size_t len, size_t *errpos, const char **why);
/* If f is "$share/GROUP/FILTER": 1 with group and the inner filter views
 * (pointers into f); 0 if not shared (f does not start with "$share/");
 * -1 if malformed (empty or bad group, no '/' after it, empty inner
 * filter).  The inner filter itself is not checked (topic_filter_check
 * does).  Output pointers may be NULL. */
int topic_filter_shared(const char *f, size_t len, const char **group, size_t *glen,
                        const char **inner, size_t *ilen);
/* Does filter match topic?  Topics starting with '$' are not matched by a
 * filter whose first level is '+' or '#' ([MQTT-4.7.2-1]).  "a/#" also
 * matches "a" ([MQTT-4.7.1-2]).  A shared filter matches as its inner
 * filter.  False if either string is invalid (checked here, linear). */
bool topic_match_n(const char *filter, size_t flen, const char *topic, size_t tlen);
bool topic_match(const char *filter, const char *topic);          /* NUL-terminated convenience */
/* Does every topic matched by `narrow` also match `wide`?  (ACL checks of
 * SUBSCRIBE filters, like mosquitto's sub-vs-acl match: wide "a/#" covers
 * narrow "a/+/b" and "a"; wide "a/+" does not cover "a/#"; wide "#" does
 * not cover "$SYS/#".)  A shared narrow filter is judged by its inner
 * filter; a shared wide filter covers only shared filters of the same
 * group.  False if either is not a valid filter.  NUL-terminated. */
bool topic_filter_covers(const char *wide, const char *narrow);

/* ---- the subscription tree ---- */

/* A subscription tree: (filter, owner) pairs with options; matching a
 * topic yields every pair whose filter matches.  The key of a
 * subscription is the full filter string (a shared one included) and the
 * owner pointer: "a/b" and "$share/g/a/b" of one owner are two
 * subscriptions. */
struct subtree;
struct subtree *subtree_new(void);                 /* NULL on ENOMEM */
void subtree_free(struct subtree *t);              /* NULL is fine */
/* Adds or replaces the subscription of owner on filter (the filter string
 * is copied; its opts and subid are replaced).  opts: a byte the caller
 * defines (QoS, no-local...), subid: 0 = none.  Returns 1 if it replaced
 * an existing one, 0 if new, -1 with errno ENOMEM, or EINVAL if the filter
 * is not valid (topic_filter_check) or has more than SUBTREE_MAX_LEVELS
 * levels; on -1 the tree is unchanged. */
int subtree_add(struct subtree *t, const char *filter, size_t flen, void *owner, uint8_t opts,
                uint32_t subid);
/* 0 removed, -1 not found. */
int subtree_remove(struct subtree *t, const char *filter, size_t flen, void *owner);
/* Removes every subscription of owner; returns how many.  Cost is
 * proportional to that owner's subscriptions, not the tree's. */
size_t subtree_remove_owner(struct subtree *t, void *owner);
/* filter: the subscription's full filter string as given to subtree_add
 * ("$share/GROUP/..." for shared ones), NUL-terminated, valid until that
 * subscription is removed or replaced. */
typedef void (*subtree_match_fn)(void *arg, void *owner, const char *filter, uint8_t opts,
                                 uint32_t subid);
/* Calls fn once per matching (filter, owner) pair, in no particular order;
 * an owner with overlapping subscriptions is called once per matching
 * filter (the caller merges them, MQTT 5.0 4.8.1).  fn must not modify the
 * tree.  A level trie with hashed children: no allocation, cost
 * proportional to the topic's levels and the matches, not to the number
 * of subscriptions.  An invalid topic (empty, '+', '#', NUL, too long)
 * matches nothing. */
void subtree_match(const struct subtree *t, const char *topic, size_t tlen, subtree_match_fn fn,
                   void *arg);
size_t subtree_count(const struct subtree *t);     /* subscriptions */

#endif /* CHAND_PUBSUB_H */
