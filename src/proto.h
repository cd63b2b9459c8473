/*
 * proto.h: the jq wire protocol, version 2.
 *
 * This header and man/jq-protocol.7 describe the same protocol; the page is
 * normative.  Bump JQ_PROTO_VERSION whenever a change could break an existing
 * peer, and keep accepting every version between JQ_PROTO_MIN and
 * JQ_PROTO_VERSION.  Adding a command, a reply keyword or a key=value field
 * does not need a bump: peers ignore fields they do not know.
 *
 * Shape of a conversation:
 *
 *   S: JQ 2 jq-serve/0.1.0 auth=hmac-sha256 nonce=SN   greeting
 *   C: HELLO 2 name=node1:4242 auth=CN:MAC  mandatory first request
 *   S: OK 2 auth=MAC2                   the server proves it too
 *   C: TAKE                             may wait until a job is free
 *   S: JOB 7 A.wav size=11 attempt=1 lease=600 token=T
 *   S: DATA 11
 *   S: <11 bytes>END 11 <crc32c>
 *   C: PUT 7 token=T
 *   C: DATA 5
 *   C: <5 bytes>END 5 <crc32c>
 *   C: TAKE                             pipelined: one round trip per job
 *   S: OK 7
 *   S: NOJOB finished
 *
 * Pipelining (additive, no version bump): the server executes requests
 * ahead of their replies, up to JQ_INFLIGHT_MAX PUTs and ADDs in flight
 * per connection, and replies strictly in request order; requests without
 * PROTO_AHEAD wait for the earlier replies, so they see their effects.
 *
 * Requests are lines of at most JQ_LINE_MAX bytes ending in LF (a CR before
 * the LF is ignored).  Words are separated by single spaces.  Job names and
 * other free text travel percent-encoded (see proto_encode), so a line never
 * holds a raw space, control byte or non-ASCII byte in a field.
 */
#ifndef JQ_PROTO_H
#define JQ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define JQ_PROTO_VERSION	2	/* 2: attempt tokens (token=) */
#define JQ_PROTO_MIN		2
#define JQ_PORT_DEFAULT		7117
#define JQ_PORT_DEFAULT_STR	"7117"

/* Limits.  Every one is enforced by the server with a clean error. */
#define JQ_LINE_MAX		16384	/* request or reply line, LF included */
#define JQ_NAME_MAX		4096	/* job name, raw bytes before encoding */
#define JQ_WORKER_MAX		256	/* worker name, raw bytes */
#define JQ_GLOB_MAX		1024	/* TAKE match= pattern, raw bytes */
#define JQ_ARGS_MAX		16	/* words on one request line */
#define JQ_MSG_MAX		65536	/* FAIL message payload */
#define JQ_MSG_KEEP		4096	/* tail of a FAIL message the server keeps */
#define JQ_STAT_FAILED_MAX	100	/* FAILED lines in one STAT reply */
#define JQ_JOBS_MAX		1000	/* JOBINFO lines in one JOBS reply (limit=) */
#define JQ_JOBS_SCAN_MAX	16384	/* jobs one JOBS request looks at */
#define JQ_JOBS_REPLY_MAX	(64U << 10)	/* bytes of JOBINFO lines in one JOBS reply, about */
#define JQ_PAYLOAD_DEFAULT_MAX	(64ULL << 30)	/* PUT payload, --max-result */
#define JQ_CONNS_DEFAULT_MAX	4096	/* --max-conns: authenticated connections */
#define JQ_UNAUTH_DEFAULT_MAX	256	/* --max-unauth: connections authenticating */
/*
 * Descriptors for the files requests open (TAKE's and WAIT's data, PUT's
 * and ADD's payload) come from a budget; a request that finds it spent
 * waits unread and is never refused (jq-protocol(7), LIMITS).
 */
#define JQ_CHUNK		(256U << 10)	/* DATA chunk the tools send */
#define JQ_LEASE_DEFAULT_MS	(10 * 60 * 1000)	/* --lease */
#define JQ_SECONDS_MAX		31536000	/* lease= and wait=: one year */
#define JQ_AUTH_LINE_MAX	512	/* a line before authentication, LF included */
#define JQ_HANDSHAKE_MS		10000	/* time to authenticate after connecting */
#define JQ_STALL_DEFAULT_MS	30000	/* --stall-timeout: half a request */
#define JQ_IDLE_DEFAULT_MS	600000	/* --idle-timeout: a connection holding nothing */
#define JQ_REPLY_BACKLOG	(64U << 10)	/* unsent replies before reading stops */
#define JQ_INFLIGHT_MAX		64	/* requests read ahead of their replies
					 * (results being made durable) */
#define JQ_ADD_DEFAULT_MAX	(1ULL << 30)	/* --max-add-size: an added job's data */
#define JQ_SPOOL_DEFAULT_MAX	(64ULL << 30)	/* --max-spool: data of added jobs held */
#define JQ_SPOOL_JOBS_DEFAULT_MAX 1000000	/* --max-spool-jobs */
#define JQ_DRAIN_MAX		256	/* DRAIN patterns held at once */
#define JQ_QUEUE_NAME_MAX	64	/* bytes of a queue name, [A-Za-z0-9._-] */
#define JQ_QUEUES_MAX		1024	/* named queues on a server, default included */
#define JQ_TAKE_QUEUES_MAX	32	/* queues one TAKE names (queue=a,b,...) */
#define JQ_PRIORITY_MIN		(-1000)	/* ADD priority=, higher first */
#define JQ_PRIORITY_MAX		1000
#define JQ_AFTER_MAX		1000	/* prerequisites of one ADD, and of one job */
#define JQ_TEMPFAIL_TRIES	3	/* EX_TEMPFAILs in a row that only wait */
#define JQ_TEMPFAIL_BACKOFF_MS	500	/* the first such wait; doubles */

/* Request verbs, in the order of the dispatch table in proto.c. */
enum proto_cmd {
	CMD_HELLO,	/* HELLO <version> [name=<enc>] */
	CMD_TAKE,	/* TAKE [match=<enc-glob>] [wait=<s>] [hold=conn|lease] [lease=<s>]
			 * [queue=<name>[,<name>]...] */
	CMD_PUT,	/* PUT <id> token=<t> [size=<n>] [kind=tree]  + payload */
	CMD_FAIL,	/* FAIL <id> token=<t> [exit=<n>|signal=<n>|timeout=1] [tempfail=1]  + payload */
	CMD_RELEASE,	/* RELEASE <id> token=<t>: hand a held job back, not run */
	CMD_TOUCH,	/* TOUCH <id> token=<t> [lease=<seconds>]: renew a lease */
	CMD_RETRY,	/* RETRY <id>: a failed job waits again */
	CMD_STAT,	/* STAT */
	CMD_JOBS,	/* JOBS [state=<s>[,<s>]...] [queue=<enc>] [match=<enc-glob>] [after=<id>] [limit=<n>] */
	CMD_QUIT,	/* QUIT */
	CMD_ADD,	/* ADD name=<enc> [size=<n>] [if_new=1]
			 * [queue=<name>] [priority=<n>] [after=<id>[,<id>]...]
			 * [after_name=<enc>[,<enc>]...] [before=<id>|before_name=<enc>]
			 * + payload: a new job */
	CMD_SHUTDOWN,	/* SHUTDOWN: finish the running jobs, take no more, exit */
	/* waiting for a result, cancelling, draining (issue 11: wait.c, manage.c) */
	CMD_WAIT,	/* WAIT <id> [name=<enc>]: answered when the job has ended */
	CMD_CANCEL,	/* CANCEL <id> [name=<enc>]: a waiting job fails, "cancelled" */
	CMD_DRAIN,	/* DRAIN <enc-glob>: matching workers get NOJOB drained */
	CMD_UNDRAIN,	/* UNDRAIN <enc-glob>: a DRAIN undone */
	CMD_COUNT
};

/* Flags in the dispatch table. */
#define PROTO_PAYLOAD	0x1	/* a payload follows the line */
#define PROTO_PREHELLO	0x2	/* allowed before HELLO */
#define PROTO_AHEAD	0x4	/* executed while earlier results of the
				 * connection are being made durable; other
				 * requests wait for their replies first */

/* Error codes: the word after ERR. */
#define ERR_PROTO	"PROTO"		/* malformed or unknown request; stream in sync */
#define ERR_TOOLONG	"TOOLONG"	/* line over JQ_LINE_MAX; skipped to its LF */
#define ERR_TOOBIG	"TOOBIG"	/* payload over the limit; payload skipped */
#define ERR_CHECKSUM	"CHECKSUM"	/* payload size or CRC-32C mismatch; nothing stored */
#define ERR_NOSUCHJOB	"NOSUCHJOB"	/* no job with that id */
#define ERR_DONE	"DONE"		/* the job already has a result or has failed */
#define ERR_NOTHELD	"NOTHELD"	/* FAIL/RELEASE/TOUCH not from the current holder, RETRY of a job not failed */
#define ERR_STALE	"STALE"		/* PUT whose token names no job here with that input */
#define ERR_HELLO	"HELLO"		/* request before HELLO, or HELLO twice */
#define ERR_VERSION	"VERSION"	/* no common protocol version; closing */
#define ERR_IO		"IO"		/* server could not store the result; job stays retryable */
#define ERR_LIMIT	"LIMIT"		/* too many connections; closing */
#define ERR_FRAMING	"FRAMING"	/* payload framing broken; closing */
#define ERR_ABORTED	"ABORTED"	/* the sender abandoned the payload; nothing stored */
#define ERR_AUTH	"AUTH"		/* not authenticated, or authentication failed; closing */
#define ERR_TIMEOUT	"TIMEOUT"	/* stalled or idle too long; closing */
#define ERR_EXISTS	"EXISTS"	/* ADD: a job has that name, or its result would clash */
#define ERR_BADNAME	"BADNAME"	/* ADD: the name makes no safe result name */
#define ERR_FULL	"FULL"		/* ADD: the spool is at a limit; nothing added */
#define ERR_CLOSED	"CLOSED"	/* ADD, TAKE, RETRY, WAIT: the server is shutting down */
#define ERR_TREE	"TREE"		/* PUT kind=tree: the tree is refused (unsafe, past a limit); nothing stored */
#define ERR_RUNNING	"RUNNING"	/* CANCEL: the job is running; only a waiting one can be */
#define ERR_CYCLE	"CYCLE"		/* ADD: after= and before= would make a job wait for itself */

/*
 * Reply words: the first word of each line the server sends outside job
 * data.  The server writes them, client.c, slotconn.c and jq-stat read them.
 */
#define REPLY_GREETING	"JQ"	/* JQ <version> jq-serve/<sw> auth=<mode> [nonce=<sn>] */
#define REPLY_OK	"OK"	/* OK <id>, OK <version> [auth=], OK <id> lease=|done=, OK bye */
#define REPLY_ERR	"ERR"	/* ERR <code> <text>, code one of ERR_* */
#define REPLY_JOB	"JOB"	/* JOB <id> <name> size= attempt= lease= token= [result=]
				 * [queue=], then a payload */
#define REPLY_NOJOB	"NOJOB"	/* NOJOB <reason>, reason one of NOJOB_* */
#define REPLY_STAT	"STAT"	/* STAT <key>=<n> ...: the first line of a STAT reply */
#define REPLY_WORKER	"WORKER"	/* WORKER <name> peer= running= done= failed= */
#define REPLY_FAILED	"FAILED"	/* FAILED <id> <name> status= msg= */
#define REPLY_QUEUE	"QUEUE"	/* QUEUE <name> total= waiting= running= done= failed= */
#define REPLY_JOBINFO	"JOBINFO"	/* JOBINFO <id> <name> queue= state= attempts= ...: a JOBS line */
#define REPLY_END	"END"	/* the last line of a STAT reply; of a JOBS reply, END [next=<id>] */
#define REPLY_BYE	"bye"	/* after OK, the answer to QUIT */
#define REPLY_WAITING	"WAITING"	/* WAITING <id> <name> state=: a WAIT waits for the job's end */
#define REPLY_RESULT	"RESULT"	/* RESULT <id> <name> size= [kind=tree], then a payload: WAIT's result */

/*
 * Reasons after NOJOB.  Once every job has finished, the server closes a
 * connection after NOJOB finished (its FIN follows the reply; it reads and
 * drops what comes after, until the client's FIN): a client sends nothing
 * more on it.  No version bump: clients already stopped there.
 */
#define NOJOB_FINISHED	"finished"	/* no matching job will ever come */
#define NOJOB_TIMEOUT	"timeout"	/* wait= ran out while matching jobs ran */
#define NOJOB_DRAINED	"drained"	/* this worker is drained (DRAIN): no job for it */

/* Authentication modes: the greeting's auth=. */
#define AUTH_MODE_NONE	"none"		/* jq-serve --no-auth */
#define AUTH_MODE_PEER	"peer"		/* a UNIX peer running as the server's user or root */
#define AUTH_MODE_HMAC	"hmac-sha256"	/* the token, proved in HELLO's auth= */

/* Payload frame words, in both directions (struct proto_frame). */
#define FRAME_WORD_DATA		"DATA"	/* DATA <n>, then n bytes */
#define FRAME_WORD_END		"END"	/* END <size> <CRC-32C, 8 hex digits> */
#define FRAME_WORD_ABORT	"ABORT"	/* the sender abandons the payload */

/* Keys of key=value words in requests and replies. */
#define KEY_AFTER	"after"		/* ADD: the new job runs after these (ids, comma-separated) */
#define KEY_AFTER_NAME	"after_name"	/* ADD: the same, by name (encoded, a comma as %2C) */
#define KEY_ATTEMPT	"attempt"	/* JOB */
#define KEY_BEFORE	"before"	/* ADD: the new job is a prerequisite of this one */
#define KEY_BEFORE_NAME	"before_name"	/* ADD: the same, by name (encoded) */
#define KEY_AUTH	"auth"		/* greeting (mode), HELLO and its OK (proof) */
#define KEY_DONE	"done"		/* FAIL's OK: jobs done on the server */
#define KEY_EXISTING	"existing"	/* ADD's OK: the name was a job already */
#define KEY_EXIT	"exit"		/* FAIL */
#define KEY_HOLD	"hold"		/* TAKE: HOLD_CONN or HOLD_LEASE */
#define KEY_IF_NEW	"if_new"	/* ADD: answer an existing name with its id */
#define KEY_KIND	"kind"		/* JOB, PUT: KIND_TREE; absent: a file */
#define KEY_LEASE	"lease"		/* TAKE, TOUCH; JOB and TOUCH's OK */
#define KEY_MATCH	"match"		/* TAKE */
#define KEY_NAME	"name"		/* HELLO, ADD, WAIT, CANCEL */
#define KEY_NONCE	"nonce"		/* greeting */
#define KEY_PRIORITY	"priority"	/* ADD; JOBINFO */
#define KEY_QUEUE	"queue"		/* ADD, TAKE; JOB */
#define KEY_SIGNAL	"signal"	/* FAIL */
#define KEY_RESULT	"result"	/* JOB: the result's file name, when -r named it */
#define KEY_RUNNING	"running"	/* SHUTDOWN's OK: jobs still running; DRAIN's */
#define KEY_SIZE	"size"		/* PUT, ADD; JOB */
#define KEY_TEMPFAIL	"tempfail"	/* FAIL: exit status 75, EX_TEMPFAIL: try again later */
#define KEY_TIMEOUT	"timeout"	/* FAIL */
#define KEY_TOKEN	"token"		/* JOB; PUT, FAIL, RELEASE, TOUCH */
#define KEY_WAIT	"wait"		/* TAKE */
#define KEY_WORKERS	"workers"	/* DRAIN's OK: connected workers it matches */
/*
 * kind=tree: the payload is a tree, an uncompressed pax tar stream (arch.c):
 * a JOB whose input is a directory, a PUT of an <outdir> result, a RESULT
 * (WAIT's answer) of a job whose result is a tree.
 */
#define KIND_TREE	"tree"
#define HOLD_CONN	"conn"		/* the job is released when the connection closes */
#define HOLD_LEASE	"lease"		/* the job runs on until its lease runs out */

/* Keys of the STAT reply's lines: STAT, WORKER and FAILED. */
#define STAT_TOTAL		"total"		/* STAT: jobs in all */
#define STAT_WAITING		"waiting"	/* STAT */
#define STAT_RUNNING		"running"	/* STAT, WORKER */
#define STAT_DONE		"done"		/* STAT, WORKER */
#define STAT_FAILED		"failed"	/* STAT, WORKER */
#define STAT_BLOCKED		"blocked"	/* STAT, QUEUE: waiting for prerequisites */
#define STAT_WORKERS		"workers"	/* STAT: WORKER lines that follow */
#define STAT_FAILED_LISTED	"failed_listed"	/* STAT: FAILED lines that follow */
#define STAT_VERSION		"version"	/* STAT: the server's software */
#define STAT_PROTOCOL		"protocol"	/* STAT: JQ_PROTO_VERSION */
#define STAT_ELAPSED		"elapsed_ms"	/* STAT: the run's time so far, stopped at its end */
#define STAT_RESUMED		"resumed"	/* STAT: jobs finished at start (journal) */
#define STAT_WINDOW_MS		"window_ms"	/* STAT: the stretch with work so far; 0 idle */
#define STAT_WINDOW_FINISHED	"window_finished" /* STAT: jobs finished in that stretch */
#define STAT_IDLE		"idle"		/* STAT: 1: nothing waiting or running, serving on */
#define STAT_PEER		"peer"		/* WORKER */
#define STAT_STATUS		"status"	/* FAILED: a STATUS_* */
#define STAT_MSG		"msg"		/* FAILED: the tail of the message */

/*
 * Keys of JOBS and of its reply's JOBINFO and END lines (jq-protocol(7),
 * JOBS); status= and msg= are STAT_STATUS and STAT_MSG, match= KEY_MATCH.
 */
#define JOBS_STATE	"state"		/* JOBS (a list), JOBINFO: a JOBSTATE_* */
#define JOBS_QUEUE	"queue"		/* JOBS, JOBINFO: the job's queue */
#define JOBS_AFTER	"after"		/* JOBS: list the jobs after this id */
#define JOBS_LIMIT	"limit"		/* JOBS: JOBINFO lines at most */
#define JOBS_NEXT	"next"		/* END: more may follow; ask after this id */
#define JOBS_ATTEMPTS	"attempts"	/* JOBINFO: times taken */
#define JOBS_WORKER	"worker"	/* JOBINFO: who took it last */
#define JOBS_STARTED	"started"	/* JOBINFO: its last attempt began, epoch ms */
#define JOBS_ENDED	"ended"		/* JOBINFO: its last attempt ended, epoch ms */
#define JOBS_RUNTIME	"runtime_ms"	/* JOBINFO: how long it ran, or runs so far */
#define JOBSTATE_WAITING	"waiting"	/* the words of state=, by enum job_state */
#define JOBSTATE_RUNNING	"running"
#define JOBSTATE_DONE		"done"
#define JOBSTATE_FAILED		"failed"
#define JOBSTATE_BLOCKED	"blocked"
#define JOBS_PREREQ	"after"		/* JOBINFO of a blocked job: its unfinished prerequisites */
#define QUEUE_DEFAULT		"default"	/* the queue of files, and of ADD and
						 * TAKE without queue= */

/* The status of a failed job (FAILED status=). */
#define STATUS_FAILED	"failed"	/* none given, or the server found it */
#define STATUS_EXIT	"exit"		/* exit:<n> */
#define STATUS_SIGNAL	"signal"	/* signal:<n> */
#define STATUS_TIMEOUT	"timeout"
#define STATUS_LOST	"lost"		/* its worker was lost --crash-limit times */
#define STATUS_CANCELLED "cancelled"	/* CANCEL, while it waited */
#define STATUS_DEPENDENCY "dependency"	/* a prerequisite failed for good */

/*
 * The attempt token of a JOB, carried back by every request about the job:
 * 32 lowercase hex digits, the server instance (8: random, never 0), the
 * attempt serial (8: counted per instance from 1, never reused) and the
 * fingerprint of the job's input (16: a hash of its device, inode, size and
 * mtime as recorded at start).  The instance and serial name the attempt;
 * the fingerprint names the input across server instances.
 */
#define PROTO_TOKEN_LEN		32
struct proto_token {
	uint32_t	 instance;
	uint32_t	 serial;
	uint64_t	 fingerprint;
};

/* Maximum decimal digits of a uint64_t plus NUL. */
#define PROTO_U64_LEN	21

/* A request line split into words; pointers point into the caller's line. */
struct proto_req {
	enum proto_cmd	 cmd;
	int		 flags;		/* PROTO_* of the command */
	int		 argc;		/* positional words after the verb */
	char		*argv[JQ_ARGS_MAX];
	int		 nkv;		/* key=value words, in order */
	char		*key[JQ_ARGS_MAX];
	char		*val[JQ_ARGS_MAX];
};

/* A payload frame line: DATA <n>, END <size> <crc>, or ABORT. */
struct proto_frame {
	int		 kind;		/* FRAME_DATA, FRAME_END, FRAME_ABORT */
	uint64_t	 len;		/* DATA length, or END total size */
	uint32_t	 crc;		/* END only */
};

#define FRAME_DATA	0
#define FRAME_END	1
#define FRAME_ABORT	2

#endif /* JQ_PROTO_H */
