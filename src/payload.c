/*
 * payload.c: a payload jq-serve receives: the result after PUT, written to
 * a store (store.c) as it arrives; the data of a new job after ADD, written
 * likewise to a temporary file in the spool (spool.c), or dropped when the
 * name is a job already (drop); or the message after FAIL, kept in memory
 * (at most JQ_MSG_MAX bytes).
 *
 * A payload is a series of frame lines, "DATA <n>" each followed by n bytes,
 * ended by "END <size> <crc>" or "ABORT".  payload_frame reads one frame
 * line and says what comes next (enum payload_next); payload_data takes
 * the bytes of a DATA chunk.  Which state the connection is in, and what
 * it answers, is conn.c's business: this file writes no reply.
 *
 * A payload may be refused at any point: when the request was bad
 * (payload_begin with an error), when the store fails, when it grows past
 * its limit, or at END when the size or CRC-32C does not match or the job
 * has already ended.  From then on its bytes are read and dropped, so the
 * stream stays in sync, and END reports the first refusal.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "jq.h"

#define PAYLOAD_IOV	16

static void	payload_refuse_io(struct payload *, const char *);

/* Prepare an idle payload (no store open). */
void
payload_init(struct payload *p)
{
	memset(p, 0, sizeof *p);
	p->store.fd = p->store.dirfd = -1;
}

/*
 * Begin receiving a payload for cmd about job j, at most limit bytes; err
 * non-NULL (with errmsg, now ours) means it is refused and dropped.
 */
void
payload_begin(struct payload *p, enum proto_cmd cmd, struct job *j,
    uint64_t limit, const char *err, char *errmsg)
{
	char	*cause;

	p->cmd = cmd;
	p->job = j;
	p->left = p->total = 0;
	p->crc = 0;
	p->err = err;
	p->errmsg = errmsg;
	p->limit = limit;
	if (err != NULL)
		return;
	if (cmd == CMD_PUT) {
		if (store_open(&p->store, j->result, j->rdir_dev, j->rdir_ino,
		    &cause) != 0) {
			payload_refuse_io(p, cause);
			free(cause);
			return;
		}
		/* serve.c let a tree result stand at start only for these */
		p->store.over_tree = j->tree_fd >= 0;
		p->storing = 1;
	} else if (cmd == CMD_ADD) {
		if (p->drop)
			return;
		if (spool_begin(&p->store, &cause) != 0) {
			payload_refuse_io(p, cause);
			free(cause);
			return;
		}
		p->storing = 1;
	} else {
		if (p->msg == NULL)
			p->msg = evbuffer_new();
		evbuffer_drain(p->msg, evbuffer_get_length(p->msg));
	}
}

/* Refuse the payload from now on (its bytes are dropped); the first refusal stands. */
static void
payload_refuse(struct payload *p, const char *err, char *errmsg)
{
	if (p->err != NULL) {
		free(errmsg);
		return;
	}
	p->err = err;
	p->errmsg = errmsg;
	if (p->storing) {
		store_abort(&p->store);
		p->storing = 0;
	}
}

/*
 * The result cannot be stored (cause says why): refuse it with ERR_IO, and
 * keep the cause for jobs_reopen at the payload's end.
 */
static void
payload_refuse_io(struct payload *p, const char *cause)
{
	if (p->err != NULL)
		return;
	if (p->cmd == CMD_ADD) {
		log_warnx("an added job: cannot spool its data: %s", cause);
		payload_refuse(p, ERR_IO, xprintf("cannot store the job's data: "
		    "%s; nothing added", cause));
		return;
	}
	log_warnx("job %llu %s: cannot store result: %s",
	    (unsigned long long)p->job->id, p->job->path, cause);
	payload_refuse(p, ERR_IO, xprintf("cannot store the result: %s; the "
	    "job waits for another try", cause));
	p->iocause = xstrdup(cause);
}

/* Store (or drop) n bytes of the current DATA chunk, buffered in in. */
void
payload_data(struct payload *p, struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec	 v[PAYLOAD_IOV];
	int			 i, nv;
	size_t			 done = 0, len;
	char			*cause;

	if (p->err != NULL || p->drop)
		done = n;
	nv = done < n ? evbuffer_peek(in, (ev_ssize_t)n, NULL, v, PAYLOAD_IOV) :
	    0;
	for (i = 0; i < nv && i < PAYLOAD_IOV && done < n; i++) {
		len = v[i].iov_len < n - done ? v[i].iov_len : n - done;
		done += len;
		if (p->err != NULL)
			continue;	/* refused midway: drop the rest */
		p->crc = crc32c_update(p->crc, v[i].iov_base, len);
		if (p->cmd == CMD_FAIL) {
			evbuffer_add(p->msg, v[i].iov_base, len);
			continue;
		}
		if (store_write(&p->store, v[i].iov_base, len, &cause) < 0) {
			payload_refuse_io(p, cause);
			free(cause);
		}
	}
	/* bytes past the peeked iovecs stay for the next round */
	evbuffer_drain(in, done);
	p->left -= done;
	p->total += done;
}

/*
 * The payload ended with END f: check it.  A refused one whose result could
 * not be stored reopens its job, so the next try need not wait.
 */
static enum payload_next
payload_end(struct payload *p, const struct proto_frame *f)
{
	struct job	*j = p->job;
	const char	*outcome;

	if (p->cmd == CMD_ADD) {
		if (p->err == NULL && !p->drop &&
		    (f->len != p->total || f->crc != p->crc))
			payload_refuse(p, ERR_CHECKSUM, xprintf("payload damaged: "
			    "received %llu bytes with CRC-32C %08x, END says "
			    "%llu with %08x; nothing added", (unsigned long long)
			    p->total, p->crc, (unsigned long long)f->len, f->crc));
		return p->err != NULL ? PAYLOAD_REFUSED : PAYLOAD_ADD;
	}
	if (p->err == NULL && (f->len != p->total || f->crc != p->crc))
		payload_refuse(p, ERR_CHECKSUM, xprintf("payload damaged: "
		    "received %llu bytes with CRC-32C %08x, END says %llu "
		    "with %08x; nothing stored", (unsigned long long)p->total,
		    p->crc, (unsigned long long)f->len, f->crc));
	if (p->err == NULL && (outcome = jobs_outcome(j)) != NULL)
		payload_refuse(p, ERR_DONE, xprintf("job %llu already %s; "
		    "this result was not stored", (unsigned long long)j->id,
		    outcome));
	if (p->err == NULL && j->committing)
		payload_refuse(p, ERR_DONE, xprintf("job %llu: another result "
		    "is being stored; this one was not", (unsigned long long)j->id));
	if (p->err != NULL) {
		if (strcmp(p->err, ERR_IO) == 0 && jobs_reopen(j,
		    &p->token, p->iocause ? p->iocause : p->errmsg)) {
			free(p->errmsg);
			p->errmsg = xprintf("cannot store the result: %s; the "
			    "job failed after as many tries as allowed",
			    p->iocause ? p->iocause : "unknown");
		}
		return PAYLOAD_REFUSED;
	}
	return p->cmd == CMD_PUT ? PAYLOAD_PUT : PAYLOAD_FAIL;
}

/* Read one frame line of the payload; say what comes next. */
enum payload_next
payload_frame(struct payload *p, const char *line)
{
	struct proto_frame	 f;

	if (proto_parse_frame(line, &f) != 0)
		return PAYLOAD_BROKEN;
	switch (f.kind) {
	case FRAME_DATA:
		if (f.len > p->limit - p->total)
			payload_refuse(p, ERR_TOOBIG, xprintf("payload over the "
			    "limit of %llu bytes; nothing stored",
			    (unsigned long long)p->limit));
		p->left = f.len;
		/* DATA 0 is a keep-alive */
		return f.len > 0 ? PAYLOAD_DATA : PAYLOAD_MORE;
	case FRAME_END:
		return payload_end(p, &f);
	default:
		return PAYLOAD_ABORTED;
	}
}

/* Hand the store of a verified result over to *st (commit.c's, from now on). */
void
payload_handover(struct payload *p, struct store *st)
{
	*st = p->store;
	p->storing = 0;
	p->store.fd = p->store.dirfd = -1;
}

/* Return the tail of a FAIL message that the server keeps, its length in *len. */
char *
payload_message(struct payload *p, size_t *len)
{
	size_t	 all = evbuffer_get_length(p->msg), keep;
	char	*msg;

	keep = all > JQ_MSG_KEEP ? JQ_MSG_KEEP : all;
	evbuffer_drain(p->msg, all - keep);
	msg = xmalloc(keep + 1);
	evbuffer_remove(p->msg, msg, keep);
	msg[keep] = '\0';
	*len = keep;
	return msg;
}

/* Forget the payload after its end (what is not stored is dropped). */
void
payload_reset(struct payload *p)
{
	if (p->storing)
		store_abort(&p->store);
	p->storing = 0;
	free(p->errmsg);
	p->errmsg = NULL;
	free(p->iocause);
	p->iocause = NULL;
	p->err = NULL;
	free(p->status);
	p->status = NULL;
	p->tempfail = 0;
	p->job = NULL;
	memset(&p->token, 0, sizeof p->token);
	p->tree = 0;
	spool_add_free(p->add);
	p->add = NULL;
	p->drop = 0;
}

/* Free what the payload holds (its connection is going). */
void
payload_free(struct payload *p)
{
	payload_reset(p);
	if (p->msg != NULL)
		evbuffer_free(p->msg);
	p->msg = NULL;
}
