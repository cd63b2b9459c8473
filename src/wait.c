/*
 * wait.c: WAIT, a client waiting for a job's end (jq-put --wait), and the
 * result it gets back.
 *
 * WAIT <id> [name=<enc>] names a job as CANCEL does (manage_job).  When
 * the job has ended the answer comes at once: RESULT <id> <name> size=<n>
 * and the result file's bytes as a payload (DATA chunks, then END with the
 * size and the CRC-32C, exactly as a JOB's data), or FAILED <id> <name>
 * status=<s> msg=<enc>, the line STAT lists a failed job with.  Otherwise
 * WAITING <id> <name> state=<s> comes at once and the answer when the job
 * ends: done, or failed for good (an attempt that fails and runs again
 * under --retries is no end).  A server that ends first answers
 * ERR CLOSED.  Any number of connections may wait for one job; one that
 * closes is forgotten.
 *
 * conn.c keeps the waiting connections (CONN_RESULT) and streams the
 * result through its job stream (conn_pump); this file says when a job has
 * ended, writes the lines, and opens the result.
 *
 * The result sent is the file the server stored, opened with the care
 * store.c writes it with: in the result directory checked at start (its
 * device and inode), with O_NOFOLLOW and O_NONBLOCK, and it must be a
 * regular file of the size stored (jobs_done, or the journal's D record).
 * A file changed since (truncated, replaced, a FIFO or a link swapped in)
 * is not sent: ERR IO says why.  One that changes while it is sent ends in
 * ABORT (wait_result_check).
 *
 * A tree result (a directory, an <outdir> job's) is sent as an
 * uncompressed pax tar stream, as trees travel (arch.c): packed, sorted,
 * links not followed, within --max-tree-size and --max-tree-entries, into
 * an unlinked file in the state directory, then sent like a result file
 * with kind=tree on the RESULT line.  Packed anew for every WAIT, so the
 * same tree gives the same bytes (what jq-put needs to resume).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "jq.h"

#define WAIT_OPEN_FLAGS	(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | \
	O_CLOEXEC)

/*
 * WAIT <id> [name=<enc>]: conn.c answers once the job has ended (or says
 * WAITING first).  An unknown job is answered here.
 */
enum cmd_next
wait_request(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*err = NULL;
	char		*errmsg = NULL;
	struct job	*j;

	if ((j = manage_job(r, &err, &errmsg)) == NULL) {
		evbuffer_add_printf(out, REPLY_ERR " %s %s\n", err, errmsg);
		free(errmsg);
		return NEXT_LINE;
	}
	s->wait_id = j->id;
	return NEXT_WAIT;
}

/*
 * Whether j has ended: done, its result in its file (a small result is done
 * a moment before: commit.c), or failed for good.
 */
int
wait_ended(const struct job *j)
{
	return (j->state == JOB_DONE && !j->committing) ||
	    j->state == JOB_FAILED;
}

/*
 * WAITING <id> <name> state=<waiting|running|blocked>: the job has not
 * ended yet.
 */
void
wait_reply_waiting(const struct job *j, struct evbuffer *out)
{
	char	*name = proto_encode_dup(j->path, strlen(j->path));

	evbuffer_add_printf(out, REPLY_WAITING " %llu %s " JOBS_STATE "=%s\n",
	    (unsigned long long)j->id, name, j->state == JOB_RUNNING ||
	    j->state == JOB_DONE ?	/* done, its file not in place yet */
	    JOBSTATE_RUNNING : j->state == JOB_BLOCKED ? JOBSTATE_BLOCKED :
	    JOBSTATE_WAITING);
	free(name);
}

/* FAILED <id> <name> status=<s> msg=<enc>: the job failed for good. */
void
wait_reply_failed(const struct job *j, struct evbuffer *out)
{
	char	*name, *status, *msg;

	name = proto_encode_dup(j->path, strlen(j->path));
	status = j->fail_status ? proto_encode_dup(j->fail_status,
	    strnlen(j->fail_status, 64)) : xstrdup(STATUS_FAILED);
	msg = cmd_stat_msg(j, JQ_LINE_MAX - 128 - strlen(name) -
	    strlen(status));
	evbuffer_add_printf(out, REPLY_FAILED " %llu %s " STAT_STATUS "=%s "
	    STAT_MSG "=%s\n", (unsigned long long)j->id, name, status, msg);
	free(name);
	free(status);
	free(msg);
}

/*
 * RESULT <id> <name> size=<n> [kind=tree]: the result's bytes (a tree's
 * tar stream) follow as a payload.
 */
void
wait_reply_result(const struct job *j, const struct wait_result *w,
    struct evbuffer *out)
{
	char	*name = proto_encode_dup(j->path, strlen(j->path));

	evbuffer_add_printf(out, REPLY_RESULT " %llu %s " KEY_SIZE "=%llu%s\n",
	    (unsigned long long)j->id, name, (unsigned long long)w->size,
	    w->tree ? " " KEY_KIND "=" KIND_TREE : "");
	free(name);
}

/* A file's mtime in nanoseconds. */
static int64_t
wait_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/*
 * Pack the tree result open at dirfd into an unlinked file in the state
 * directory, to be sent like a result file: 0 with *w filled, or -1 with
 * *cause.  This runs in the event loop: the tree is read and written once,
 * whole, before the first byte is sent (see CAVEATS in jq-serve(1)).
 */
static int
wait_pack_tree(const struct job *j, int dirfd, struct wait_result *w,
    char **cause)
{
	struct stat	 st;
	char		*why = NULL;
	int		 tfd;

	if ((tfd = input_tree_file(&why)) == -1) {
		*cause = xprintf("%s is a tree: %s", j->result, why);
		free(why);
		return -1;
	}
	if (arch_pack(dirfd, tfd, &cli_tree_limits, NULL, &why) != 0 ||
	    lseek(tfd, 0, SEEK_SET) != 0 || fstat(tfd, &st) != 0) {
		*cause = xprintf("%s is a tree and cannot be packed: %s",
		    j->result, why != NULL ? why : strerror(errno));
		free(why);
		close(tfd);
		return -1;
	}
	w->fd = tfd;
	w->size = (uint64_t)st.st_size;
	w->mtime_ns = wait_mtime_ns(&st);
	w->tree = 1;
	return 0;
}

/*
 * Open done job j's result to send it: 0 with *w filled (w->fd is the
 * caller's), or -1 with *cause saying why it cannot be sent.  A tree
 * result (a directory) is sent as its tar stream, packed now.
 */
int
wait_open_result(const struct job *j, struct wait_result *w, char **cause)
{
	const char	*slash = strrchr(j->result, '/');
	const char	*base = slash ? slash + 1 : j->result;
	struct stat	 st;
	char		*dir;
	int		 dirfd, fd, rc;

	dir = slash == NULL ? xstrdup(".") : slash == j->result ?
	    xstrdup("/") : xstrndup(j->result, (size_t)(slash - j->result));
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*cause = xprintf("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	if (fstat(dirfd, &st) != 0 || st.st_dev != j->rdir_dev ||
	    st.st_ino != j->rdir_ino) {
		*cause = xprintf("%s is no longer the result directory checked "
		    "at start", dir);
		close(dirfd);
		free(dir);
		return -1;
	}
	free(dir);
	fd = openat(dirfd, base, WAIT_OPEN_FLAGS);
	close(dirfd);
	if (fd < 0) {
		*cause = xprintf("%s: %s", j->result, errno == ELOOP ?
		    "a symbolic link now" : strerror(errno));
		return -1;
	}
	memset(w, 0, sizeof *w);
	if (fstat(fd, &st) != 0)
		*cause = xprintf("%s: %s", j->result, strerror(errno));
	else if (S_ISDIR(st.st_mode)) {
		rc = wait_pack_tree(j, fd, w, cause);
		close(fd);
		return rc;
	} else if (!S_ISREG(st.st_mode))
		*cause = xprintf("%s is %s now", j->result,
		    input_kind(st.st_mode));
	else if ((uint64_t)st.st_size != j->result_size)
		*cause = xprintf("%s holds %llu bytes, %llu when stored: it "
		    "changed since", j->result, (unsigned long long)st.st_size,
		    (unsigned long long)j->result_size);
	else {
		w->fd = fd;
		w->size = (uint64_t)st.st_size;
		w->mtime_ns = wait_mtime_ns(&st);
		return 0;
	}
	close(fd);
	return -1;
}

/*
 * All of j's result went out from fd: NULL if the file is as it was
 * opened (w), else why not (a new string).
 */
char *
wait_result_check(const struct job *j, const struct wait_result *w, int fd)
{
	struct stat	 st;

	if (fstat(fd, &st) != 0)
		return xprintf("reading %s: %s", j->result, strerror(errno));
	if ((uint64_t)st.st_size != w->size || wait_mtime_ns(&st) != w->mtime_ns)
		return xprintf("%s changed while being sent", j->result);
	return NULL;
}
