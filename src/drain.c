/*
 * drain.c: the workers drained by hand (DRAIN, jq-put --drain).
 *
 * A drain is a pattern, matched as an fnmatch(3) glob without flags
 * against a worker's HELLO name and against its node (the name less a
 * trailing "/<digits>", queue_node_len): "w1" drains w1 and jq-run's
 * slots w1/1 ... w1/N, "w1/2" that slot alone, "host1:*" every worker
 * whose name begins so.  A session that gave no name matches nothing.
 * A matching worker's TAKE is answered NOJOB drained (conn.c); its running
 * jobs are not touched.
 *
 * A drain holds until it is undone (UNDRAIN), for the queue's whole life:
 * the journal keeps it across restarts (W and U records, journal.c), so a
 * worker that reconnects to a restarted server is still drained.  At most
 * JQ_DRAIN_MAX patterns are held; the caller checks before adding.  This
 * file only keeps the list: journaling and waking the TAKEs are jobs.c's
 * (jobs_drain).
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

static char	*drain_list[JQ_DRAIN_MAX];	/* decoded patterns, in order added */
static size_t	 drain_n;

/* The index of pattern in the list, or drain_n if it is not there. */
static size_t
drain_find(const char *pattern)
{
	size_t	 i;

	for (i = 0; i < drain_n; i++)
		if (strcmp(drain_list[i], pattern) == 0)
			break;
	return i;
}

/* Drain the workers matching pattern: 1 added, 0 held already, -1 full. */
int
drain_add(const char *pattern)
{
	if (drain_find(pattern) < drain_n)
		return 0;
	if (drain_n == JQ_DRAIN_MAX)
		return -1;
	drain_list[drain_n++] = xstrdup(pattern);
	return 1;
}

/* Undo the drain of pattern: 0, or -1 if it was not drained. */
int
drain_remove(const char *pattern)
{
	size_t	 i = drain_find(pattern);

	if (i == drain_n)
		return -1;
	free(drain_list[i]);
	memmove(&drain_list[i], &drain_list[i + 1], (drain_n - i - 1) *
	    sizeof drain_list[0]);
	drain_n--;
	return 0;
}

/* Whether pattern is drained (as given, not by matching). */
int
drain_has(const char *pattern)
{
	return drain_find(pattern) < drain_n;
}

/* Whether the worker named worker (NULL: no name) matches pattern. */
int
drain_match(const char *pattern, const char *worker)
{
	char	 node[JQ_WORKER_MAX + 1];
	size_t	 n;

	if (worker == NULL)
		return 0;
	if (fnmatch(pattern, worker, 0) == 0)
		return 1;
	n = queue_node_len(worker);
	if (n == strlen(worker) || n > JQ_WORKER_MAX)	/* HELLO caps names */
		return 0;
	memcpy(node, worker, n);
	node[n] = '\0';
	return fnmatch(pattern, node, 0) == 0;
}

/* Whether the worker named worker (NULL: no name) is drained. */
int
drain_matches(const char *worker)
{
	size_t	 i;

	for (i = 0; i < drain_n; i++)
		if (drain_match(drain_list[i], worker))
			return 1;
	return 0;
}

/* How many patterns are drained. */
size_t
drain_count(void)
{
	return drain_n;
}

/* The i-th pattern drained (i < drain_count()). */
const char *
drain_get(size_t i)
{
	return drain_list[i];
}

/* Forget every drain (at exit). */
void
drain_free(void)
{
	while (drain_n > 0)
		free(drain_list[--drain_n]);
}
