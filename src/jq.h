/*
 * jq.h: the one internal header, a section per module.
 *
 * Conventions: functions are named module_verb.  Lower layers return -1 (or
 * NULL) and set *cause to a malloc'd message naming what failed and why; the
 * caller frees it after deciding whether to log it or exit with it.
 */
#ifndef JQ_H
#define JQ_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

/* The version is VERSION in the Makefile, its one place; -DJQ_VERSION carries it here. */
#ifndef JQ_VERSION
#error "JQ_VERSION is not defined: build with make, which sets it from VERSION"
#endif

#define JQ_PRINTF(a, b)	__attribute__((format(printf, a, b)))
#define JQ_NORETURN	__attribute__((noreturn))

/*
 * Exit statuses, shared by every tool and listed under EXIT STATUS in every
 * man page.  Keep the pages in step when this list changes.
 */
#define JQ_EXIT_OK		0	/* success */
#define JQ_EXIT_FAILED		1	/* jq-serve, jq-run: some job failed; jq-put --wait: it failed */
#define JQ_EXIT_USAGE		2	/* bad option, operand or value */
#define JQ_EXIT_NOWORK		3	/* jq-take: no job remains, nor will */
#define JQ_EXIT_REFUSED		4	/* the server refused: result already stored, unknown job */
#define JQ_EXIT_TIMEOUT		5	/* jq-take --wait ran out */
#define JQ_EXIT_CONNECT		6	/* cannot reach the server, or lost it */
#define JQ_EXIT_PROTOCOL	7	/* the server answered an error or spoke nonsense */
#define JQ_EXIT_IO		8	/* a local file or system call failed */
#define JQ_EXIT_SIGNAL		9	/* stopped by SIGINT or SIGTERM before the end */
#define JQ_EXIT_AUTH		10	/* authentication failed: token missing, wrong or unsafe */

/* xmalloc.c: allocators that exit on failure; for clients and start-up only. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...) JQ_PRINTF(2, 3);
char	*xprintf(const char *, ...) JQ_PRINTF(1, 2);

/* parse.c: strict number, size and duration parsing (also for options). */
int	 parse_u64(const char *, uint64_t, uint64_t, uint64_t *);
int	 parse_uint(const char *, unsigned, unsigned, unsigned *);
int	 parse_int(const char *, int, int, int *);
int	 parse_size(const char *, uint64_t *);
int	 parse_duration(const char *, uint64_t *);	/* milliseconds */

/* crc32c.c: CRC-32C (Castagnoli), hardware-accelerated where available. */
uint32_t crc32c_update(uint32_t, const void *, size_t);

/* proto.c: request and frame parsing, name encoding (see proto.h). */
int	 proto_parse_request(char *, struct proto_req *, char **);
int	 proto_request_flags(const char *);
int	 proto_parse_frame(const char *, struct proto_frame *);
const char *proto_kv(const struct proto_req *, const char *);
int	 proto_queue_valid(const char *, size_t);
const char *proto_cmd_name(enum proto_cmd);
size_t	 proto_encode(char *, size_t, const void *, size_t);
size_t	 proto_encoded_len(const void *, size_t);
char	*proto_encode_dup(const void *, size_t);
ssize_t	 proto_decode(char *);
char	*proto_word(char **);
const char *proto_word_kv(const char *, const char *, size_t *);
uint64_t proto_fingerprint(uint64_t, uint64_t, uint64_t, int64_t);
void	 proto_token_format(const struct proto_token *,
	    char [PROTO_TOKEN_LEN + 1]);
int	 proto_token_parse(const char *, struct proto_token *);

/* net.c: addresses, listening and connecting. */
#define NET_ADDR_MAX 160
#define NET_HANDSHAKE_S	10	/* connect and greeting, at most (net_connect) */
struct net_addr {
	int	 unix_path;		/* 1: path in host, 0: TCP */
	char	 host[4096];		/* host name, IP literal or UNIX path; "" = any */
	char	 port[16];
};
int	 net_parse_addr(const char *, int, struct net_addr *, char **);
int	 net_listen(const struct net_addr *, int *, size_t *, size_t, char **);
void	 net_unbound(int);
int	 net_connect(const char *, char **);
void	 net_unlink_unix(const struct net_addr *);
char	*net_fd_name(int, int);
const char *net_default_server(const char *);
int	 net_reaches(const struct net_addr *, const int *, size_t);

/* log.c: the server's log on stderr. */
void	 log_init(const char *, int);
void	 log_info(const char *, ...) JQ_PRINTF(1, 2);
void	 log_warnx(const char *, ...) JQ_PRINTF(1, 2);
void	 log_warn(const char *, ...) JQ_PRINTF(1, 2);
void	 log_debug(const char *, ...) JQ_PRINTF(1, 2);
/* What a person wants to see (a summary): shown, like a warning, unless -q. */
#define log_notice	log_warnx
int	 log_verbose(void);
#define LOG_STATUS_MAX	256	/* bytes of the status line, NUL included */
void	 log_status(const char *);
#define LOG_TALLY_REASONS	4
struct log_tally {			/* like events, summarised per interval */
	const char	*what;		/* "connections turned away" */
	uint64_t	 start_ms;	/* the interval's first event; 0: none yet */
	unsigned long	 total;		/* events in the interval */
	unsigned	 logged;	/* of which logged one by one */
	const char	*reason[LOG_TALLY_REASONS];
	unsigned long	 count[LOG_TALLY_REASONS];
};
void	 log_tally(struct log_tally *, const char *, const char *, ...)
	    JQ_PRINTF(3, 4);
void	 log_tally_flush(struct log_tally *, uint64_t, int);

/* auth.c: the token file and the HMAC challenge-response (libsodium). */
#define AUTH_KEY_MIN		16	/* bytes of key: 128 bits at least */
#define AUTH_KEY_MAX		64
#define AUTH_NONCE_BYTES	32
#define AUTH_HEX_LEN		64	/* hex digits of a nonce or a MAC */
#define AUTH_MISSING		(-2)	/* auth_load: no token file */
struct auth_key {
	unsigned char	 key[AUTH_KEY_MAX];
	size_t		 len;
};
int	 auth_init(void);
char	*auth_path(const char *, char **);
int	 auth_load(const char *, int, struct auth_key *, char **);
void	 auth_nonce(char [AUTH_HEX_LEN + 1]);
void	 auth_mac(const struct auth_key *, const char *, const char *,
	    const char *, char [AUTH_HEX_LEN + 1]);
int	 auth_check(const struct auth_key *, const char *, const char *,
	    const char *, const char *);
int	 auth_is_hex(const char *);

/*
 * client.c: a blocking client connection, used by jq-take, jq-put, jq-stat
 * and jq-run.  On failure functions return -1, set *cause, and remember in
 * client_status() which JQ_EXIT_* status fits the failure.
 */
struct client;
struct client_job {
	char		*id;		/* owned by the client_job */
	char		 token[PROTO_TOKEN_LEN + 1];	/* the attempt's */
	char		*name;		/* decoded, NUL-terminated; may hold any byte but NUL */
	size_t		 namelen;
	uint64_t	 size;		/* announced size, UINT64_MAX if unknown */
	unsigned	 attempt;
	unsigned	 lease;		/* seconds; 0 if the server gave none */
	char		*result;	/* result file name the server names, or NULL */
	int		 drained;	/* NOJOB drained: this worker takes no more */
	int		 tree;		/* kind=tree: the data is a tree (tar) */
};
struct client_rx {			/* state of a payload being received */
	uint64_t	 left;		/* bytes left in the current DATA chunk */
	uint64_t	 total;
	uint32_t	 crc;
	int		 done;
};
struct client_tx {			/* state of a payload being sent */
	uint64_t	 total;
	uint32_t	 crc;
};
struct client *client_open(const char *, const char *, int *, char **);
int	 client_flush(struct client *, char **);
void	 client_close(struct client *);
int	 client_fd(const struct client *);
int	 client_status(const struct client *);
size_t	 client_buffered(const struct client *);
const char *client_server(const struct client *);
int	 client_send(struct client *, char **, const char *, ...) JQ_PRINTF(3, 4);
int	 client_write(struct client *, const void *, size_t, char **);
char	*client_line(struct client *, char **);
int	 client_reply(struct client *, char **, char **);
int	 client_bad_reply(struct client *, char *, char **);
int	 client_take(struct client *, const char *, struct client_job *, char **);
int	 client_take_reply(struct client *, struct client_job *, char **);
void	 client_job_free(struct client_job *);
void	 client_rx_init(struct client_rx *);
ssize_t	 client_rx_next(struct client *, struct client_rx *, const char **, char **);
int	 client_rx_to_fd(struct client *, int, uint64_t *, char **);
int	 client_rx_skip(struct client *, char **);
void	 client_tx_init(struct client_tx *);
int	 client_tx_data(struct client *, struct client_tx *, const void *, size_t, char **);
int	 client_tx_end(struct client *, struct client_tx *, char **);
int	 client_tx_abort(struct client *, char **);
int	 client_tx_fd(struct client *, struct client_tx *, int, char **);
int	 client_put_fd(struct client *, const char *, const char *, int,
	    char **);
int	 client_fail(struct client *, const char *, const char *, const char *,
	    const void *, size_t, char **);
#define CLIENT_HANDLE_SEP	':'	/* in a job handle, ID:TOKEN */
char	*client_handle(const struct client_job *);
int	 client_parse_handle(const char *, char **, char *);
int	 client_simple(struct client *, char **, const char *, ...) JQ_PRINTF(3, 4);

/* show.c: untrusted bytes printed safely, for a terminal or as JSON strings. */
void	 show_text(const char *, size_t);
size_t	 show_text_width(const char *, size_t);
void	 show_text_tail(const char *, size_t, size_t);
void	 show_json(const char *, size_t);
void	 show_text_fp(FILE *, const char *, size_t);
void	 show_text_lines(FILE *, const char *, size_t);

/* statlist.c: jq-stat --list, the jobs one by one, paged through JOBS. */
struct statlist_filter {
	const char	*states;	/* "waiting,failed", checked; NULL: all */
	const char	*queue;		/* decoded; NULL: any */
	const char	*match;		/* glob; NULL: any */
};
int	 statlist_print(struct client *, const struct statlist_filter *, int,
	    char **);

/* putwait.c: jq-put --wait, a job's result to stdout across server restarts. */
int	 putwait_run(struct client *, const char *, const char *, const char *,
	    size_t, uint64_t, int);

/* cli.c: the command-line parts every tool shares (popt). */
#include <popt.h>
extern const char	*cli_prog;
extern struct poptOption cli_help_options[];
#define CLI_HELP_TABLE { NULL, '\0', POPT_ARG_INCLUDE_TABLE, cli_help_options, \
	0, "Help options:", NULL }
extern struct poptOption cli_no_options[];
extern char		*cli_token_file;	/* --token-file of a client */
extern int		 cli_no_auth;		/* --no-auth of a client */
extern struct poptOption cli_auth_options[];
#define CLI_AUTH_TABLE { NULL, '\0', POPT_ARG_INCLUDE_TABLE, cli_auth_options, \
	0, "Authentication:", NULL }
extern struct arch_limits cli_tree_limits;	/* --max-tree-size, ... */
extern struct poptOption cli_tree_options[];
#define CLI_TREE_TABLE { NULL, '\0', POPT_ARG_INCLUDE_TABLE, cli_tree_options, \
	0, "Trees (directories as jobs, <outdir> results):", NULL }
/* An empty table whose title is printed after the options by --help. */
#define CLI_EPILOGUE(text) { NULL, '\0', POPT_ARG_INCLUDE_TABLE, \
	cli_no_options, 0, text, NULL }
/* Called by cli_parse for each option: (config, the option's val, its value). */
typedef void cli_option_fn(void *, int, char **);
poptContext cli_context(const char *, int, char **, struct poptOption *,
	    const char *);
void	 cli_parse(poptContext, cli_option_fn *, void *);
void	 cli_keep(char **, char **);
const char *cli_operand(poptContext);
const char *cli_server(const char *);
void	 cli_bad_option(void *, int) JQ_NORETURN;
unsigned cli_uint(const char *, const char *, unsigned, unsigned);
int	 cli_priority(const char *, const char *);
void	 cli_queues(const char *, const char *, char **);
uint64_t cli_duration(const char *, const char *);
unsigned cli_seconds(const char *, const char *);
void	 cli_length(const char *, const char *, const char *, size_t);

/* util.c: small shared helpers. */
int	 util_write_all(int, const void *, size_t);
int	 util_cloexec(int);
int	 util_nonblock(int, int);
uint64_t util_now_ms(void);	/* monotonic */
char	*util_worker_name(void);
int	 util_atomic_write(const char *, const void *, size_t, char **);
int	 util_fsync_dir(const char *);
void	 usage_error(const char *, const char *, ...) JQ_PRINTF(2, 3) JQ_NORETURN;

/*
 * progress.c: where a run stands, from its counts: rate, ETA, the progress
 * line (jq-serve's status line, jq-stat), durations for people.
 */
struct progress {
	uint64_t	 total, running, done, failed;
	uint64_t	 resumed;	/* finished at the run's start (journal) */
	uint64_t	 elapsed_ms;	/* since the run began */
	uint64_t	 window_ms;	/* the rate's: the stretch with work */
	uint64_t	 window_finished; /* jobs finished in that stretch */
	int		 idle;		/* nothing waiting or running, serving on */
};
#define PROGRESS_LINE_MAX	160	/* bytes of a progress line, NUL included */
int	 progress_rate(const struct progress *, double *);
void	 progress_window_run(struct progress *);
int	 progress_eta(const struct progress *, uint64_t *);
void	 progress_duration(uint64_t, char *, size_t);
void	 progress_wall(uint64_t, char *, size_t);
void	 progress_line(const struct progress *, char *, size_t);

/*
 * arch.c: directory trees as tar streams (libarchive), both ways, safely.
 * A tree travels as an uncompressed pax tar stream: a worker or the server
 * packs it into a file whose size is then known, and the other side unpacks
 * it into a fresh, empty directory, relative to that directory's fd, never
 * following a symbolic link, refusing what could reach outside it (see
 * arch.c's header and jq-run(1) SECURITY) and stopping at the limits.  On
 * failure the partial tree is left for the caller to remove (arch_remove).
 */
#define ARCH_MAX_SIZE_DEFAULT		(4ULL << 30)	/* bytes of a tree's files */
#define ARCH_MAX_ENTRIES_DEFAULT	100000ULL	/* entries of a tree */
#define ARCH_MAX_RATIO_DEFAULT		1000U		/* unpacked : read, compressed input */
#define ARCH_RATIO_FLOOR		(16ULL << 20)	/* the ratio is checked past this */
struct arch_limits {
	uint64_t	 max_size;	/* bytes of file data, sparse holes counted */
	uint64_t	 max_entries;	/* entries of every kind */
	unsigned	 max_ratio;	/* bytes unpacked per byte read; 0: none */
};
void	 arch_limits_default(struct arch_limits *);
int	 arch_pack(int, int, const struct arch_limits *, int64_t *, char **);
struct archive;
int	 arch_pack_into(struct archive *, int, const char *, const char *,
	    const struct arch_limits *, char **);
int	 arch_unpack(int, int, const struct arch_limits *, char **);
int	 arch_remove(int, const char *, char **);

/* queue.c: the jobs and their states. */
#include <sys/queue.h>
enum job_state {
	JOB_WAITING, JOB_RUNNING, JOB_DONE, JOB_FAILED,
	JOB_BLOCKED,		/* waits for its prerequisites (deps.c) */
	JOB_NSTATES
};
enum job_origin {
	JOB_FILE,		/* an input file, pinned at start (input.c) */
	JOB_SPOOL		/* data added over the protocol (spool.c) */
};
struct session;
/*
 * What a job needs once it has been taken (queue_run allocates it at the
 * first take; NULL for a job never taken): most of a million queued jobs
 * never need it at once.  Kept after the job ends (--joblog, listings).
 */
struct job_run {
	struct session		*holder;	/* session that took it, or NULL */
	LIST_ENTRY(job)		 hold_entry;	/* in holder->held (the list
						 * macros' field: run->hold_entry) */
	struct event		*lease_ev;	/* while running: lease expiry */
	uint64_t		 lease_ms;	/* lease length of this take */
	uint64_t		 lease_max_ms;	/* longest lease TOUCH may ask */
	uint64_t		 renewed_ms;	/* monotonic: last renewal */
	uint64_t		 size_in;	/* job data size when last sent */
	uint64_t		 start_ms;	/* monotonic, last take */
	uint64_t		 start_wall_ms;	/* epoch, last take (--joblog) */
	uint64_t		 end_ms;	/* monotonic, its end; 0: none or
						 * running */
	char			*worker;	/* who took it last (--joblog) */
	char			*taken_node;	/* node of its last taker or NULL */
	char			*failed_node;	/* node that failed it last or
						 * NULL */
	uint64_t		 not_before_ms;	/* monotonic: waits until then */
	unsigned		 store_failures; /* results it could not store */
	unsigned		 tempfails;	/* EX_TEMPFAILs in a row (jobs.c) */
};
/*
 * A job's dependencies (deps.c), allocated at its first edge: ids, each
 * array grown as edges come.  deps_peek reads an empty one for a job
 * without.
 */
struct job_deps {
	uint32_t		*prereq;	/* jobs it runs after */
	uint32_t		 nprereq, prereq_cap;
	uint32_t		*dependent;	/* jobs that run after it */
	uint32_t		 ndependent, dependent_cap;
	uint32_t		 dep_mark;	/* deps_check's visit mark */
};
struct job {
	uint64_t		 id;		/* 1-based, in the order added */
	char			*path;		/* its name: the input as the operator
						 * named it, or the name it was added
						 * under */
	char			*result;	/* result path */
	dev_t			 in_dev;	/* the input's identity, */
	ino_t			 in_ino;	/* recorded at start: a job */
	uint64_t		 in_size;	/* is this file, not whatever */
	int64_t			 in_mtime_ns;	/* its name holds later */
	int			 in_dirfd;	/* its directory, pinned (input.c) */
	int			 tree_fd;	/* a directory's job: its tree, packed
						 * at start (input.c); else -1 */
	char			*in_name;	/* its name in in_dirfd: allocated, or
						 * in path when in_name_borrowed */
	dev_t			 rdir_dev;	/* its directory, as checked at */
	ino_t			 rdir_ino;	/* start (store_open compares) */
	enum job_state		 state;
	unsigned		 attempt;	/* times taken */
	unsigned		 failures;	/* FAILs reported; --retries bounds them */
	unsigned		 lost;		/* workers lost; --crash-limit bounds them */
	uint32_t		 serial;	/* attempt serial of the last take */
	uint32_t		 data_crc;	/* JOB_SPOOL: CRC-32C of its data */
	unsigned char		 hold_conn;	/* released when holder closes */
	unsigned char		 committing;	/* a result is being made durable */
	unsigned char		 origin;	/* enum job_origin */
	unsigned char		 result_current;	/* start: its result is up to date */
	unsigned char		 journaled;	/* start: the journal records it */
	unsigned char		 in_name_borrowed; /* in_name points into path */
	uint16_t		 queue_ix;	/* its named queue: queue.named[] */
	int16_t			 priority;	/* JQ_PRIORITY_MIN..MAX, higher first */
	uint32_t		 unmet;		/* prerequisites not DONE (deps.c) */
	TAILQ_ENTRY(job)	 wait_entry;	/* in its queue's level, waiting */
	struct job_run		*run;		/* once taken, else NULL */
	uint64_t		 result_size;	/* DONE: bytes stored (jobs_done, journal) */
	char			*fail_status;	/* "exit:1", "signal:9", ... */
	char			*fail_msg;	/* tail of the message, NUL-terminated */
	size_t			 fail_len;
	struct job_deps		*deps;		/* its edges, or NULL: none */
};
TAILQ_HEAD(job_tailq, job);
LIST_HEAD(job_list, job);
#define QUEUE_CHUNK	1024		/* jobs per chunk; chunks never move */
#define QUEUE_JOBS_MAX	0x7fffffffU	/* jobs in a queue: an id fits 31 bits */
struct queue_index {			/* hash -> nonzero 32-bit value */
	uint64_t		*slot;		/* hash << 32 | value; 0: empty */
	size_t			 cap, n;
};
struct queue_level {			/* the waiting jobs of one priority */
	int			 priority;
	struct job_tailq	 jobs;		/* in the order they are taken */
};
struct queue_named {			/* a named queue (jq-put --add --queue) */
	char			 name[JQ_QUEUE_NAME_MAX + 1];
	struct queue_level	**level;	/* highest priority first */
	size_t			 nlevels;	/* levels ever used; never freed */
	size_t			 count[JOB_NSTATES];
};
struct queue {
	struct job		**chunk;	/* QUEUE_CHUNK jobs each */
	size_t			 nchunks;
	size_t			 njobs;
	size_t			 count[JOB_NSTATES];
	struct queue_index	 names;		/* name -> id, once asked for */
	struct queue_named	**named;	/* [0] is QUEUE_DEFAULT */
	size_t			 nnamed;
	struct queue_index	 qnames;	/* queue name -> index + 1 */
};
void	 queue_init(struct queue *);
void	 queue_free(struct queue *);
int	 queue_reserve(struct queue *, size_t);
struct job *queue_add(struct queue *, char *, char *);
struct job *queue_get(const struct queue *, uint64_t);
struct job_run *queue_run(struct job *);
void	 queue_forget(struct queue *);
struct job *queue_find(struct queue *, const char *);
struct job *queue_find_name(struct queue *, const char *, size_t, int *);
uint32_t queue_hash(const void *, size_t);
int	 queue_index_reserve(struct queue_index *, size_t);
void	 queue_index_put(struct queue_index *, uint32_t, uint32_t);
uint32_t queue_index_find(const struct queue_index *, uint32_t,
	    int (*)(void *, uint32_t, const void *), void *, const void *);
void	 queue_index_free(struct queue_index *);
size_t	 queue_node_len(const char *);
struct job *queue_take(struct queue *, const uint16_t *, size_t, const char *,
	    const char *);
void	 queue_release(struct queue *, struct job *);
void	 queue_requeue(struct queue *, struct job *);
void	 queue_fail_again(struct queue *, struct job *);
void	 queue_recover(struct queue *, struct job *, enum job_state);
void	 queue_wait_tail(struct queue *, struct job *);
void	 queue_block(struct queue *, struct job *);
void	 queue_unblock(struct queue *, struct job *);
void	 queue_finish(struct queue *, struct job *, enum job_state);
int	 queue_can_match(struct queue *, const uint16_t *, size_t,
	    const char *);
int	 queue_named_find(const struct queue *, const char *, size_t);
int	 queue_named_get(struct queue *, const char *, size_t, char **);
size_t	 queue_named_resolve(const struct queue *, char *const *, size_t,
	    uint16_t *);
const char *queue_named_name(const struct queue *, const struct job *);
struct job *queue_add_in(struct queue *, char *, char *, uint16_t, int);
void	 queue_wait_tail(struct queue *, struct job *);
uint64_t queue_next_not_before(const struct queue *, uint64_t);
int	 queue_all_finished(const struct queue *);
int	 queue_name_matches(const struct job *, const char *);

/* deps.c: dependencies between jobs (after=, before=). */
const struct job_deps *deps_peek(const struct job *);
int	 deps_link(struct job *, struct job *, char **);
int	 deps_attach(struct queue *, struct job *, struct job *, char **);
struct job *deps_failed_prereq(const struct queue *, const struct job *);
int	 deps_check(struct queue *, const uint32_t *, size_t, uint64_t,
	    const char **, char **);
size_t	 deps_met(struct queue *, struct job *);
int	 deps_parse_ids(const char *, uint32_t **, uint32_t *, char **);
size_t	 deps_settle(struct queue *);
char	*deps_fail_msg(const struct job *);

/* input.c: a job's input, pinned at start, opened later only as that file. */
#define INPUT_OK	0
#define INPUT_BAD	(-1)	/* cannot be opened */
#define INPUT_NOT_FILE	(-2)	/* not a regular file */
struct stat;
int	 input_pin(struct job *, char **);
int	 input_openat_file(int, const char *, struct stat *);
void	 input_pin_stat(struct job *, int, const char *, const struct stat *);
void	 input_name_clear(struct job *);
int	 input_writers(int);
int	 input_open(const struct job *, char **);
void	 input_tree_setup(const char *);
int	 input_tree_file(char **);
char	*input_changed(const struct job *, const struct stat *);
const char *input_kind(mode_t);
void	 input_free(void);

/*
 * spool.c: jobs added at run time (ADD): their data in the state directory,
 * their names, their results, the spool's limits.
 */
struct spool_add {			/* an ADD on its way to becoming a job */
	TAILQ_ENTRY(spool_add)	 entry;		/* in the adds in flight */
	char			*name;		/* decoded, NUL-terminated */
	size_t			 namelen;
	char			*result;	/* its result path (spool_check) */
	int			 if_new;	/* if_new=1: an existing name is OK */
	unsigned		 followers;	/* if_new adds of the name waiting */
	uint64_t		 size;		/* bytes of data */
	uint32_t		 crc;		/* their CRC-32C */
	int			 watched;	/* a watched file (watch.c): no
						 * data to spool; a W record */
	int			 unsynced;	/* an archive entry (archsrc.c):
						 * its data is not fdatasync'd */
	uint16_t		 queue_ix;	/* queue=, as queue_named_get made it */
	char			 queue[JQ_QUEUE_NAME_MAX + 1];	/* its name
						 * (for the commit thread) */
	int			 priority;	/* priority= */
	uint32_t		*after;		/* after=: prerequisites (deps.c) */
	uint32_t		 nafter;
	uint64_t		 before;	/* before=: job it is one of; 0 none */
	/* set by the commit thread */
	uint64_t		 id;
	char			 idname[PROTO_U64_LEN];	/* its spool file */
	dev_t			 dev;
	ino_t			 ino;
	int64_t			 mtime_ns;
};
struct spool_limits {
	uint64_t	 max_add;	/* --max-add-size: one job's data */
	uint64_t	 max_bytes;	/* --max-spool: data held */
	uint64_t	 max_files;	/* --max-spool-jobs: jobs' data held */
};
enum spool_verdict {
	SPOOL_OK,		/* the add may go on */
	SPOOL_EXISTS,		/* a job has that name */
	SPOOL_PENDING,		/* an add of that name is in flight */
	SPOOL_REFUSED		/* err, errmsg say why */
};
struct store;
void	 spool_setup(const char *, const char *, const struct spool_limits *);
char	*spool_identity(void);
int	 spool_open(const char *, char **);
char	*spool_safe_name(const char *, size_t);
struct spool_add *spool_add_new(const char *, size_t, int);
void	 spool_add_free(struct spool_add *);
enum spool_verdict spool_check(struct queue *, struct spool_add *, uint64_t,
	    struct job **, struct spool_add **, const char **, char **);
uint64_t spool_max_add(void);
void	 spool_pend(struct spool_add *);
void	 spool_unpend(struct spool_add *);
uint64_t spool_inflight(void);
const struct spool_add *spool_pending_next(const struct spool_add *);
int	 spool_begin(struct store *, char **);
int	 spool_commit_file(struct store *, struct spool_add *, char **);
void	 spool_verify_on_settle(void);
int	 spool_was_lost(const struct job *);
int	 spool_refill(struct job *, struct store *, uint64_t, uint32_t,
	    char **);
uint64_t spool_next_id(void);
void	 spool_took_ids(uint64_t);
int	 spool_name_file(struct store *, struct spool_add *, uint64_t, char **);
int	 spool_sync_dir(char **);
void	 spool_unname(struct store *, struct spool_add *);
void	 spool_test_kill(void);
void	 spool_adopt(struct job *, const struct spool_add *);
int	 spool_recover(struct queue *, const char *, char *, const char *,
	    const char *, uint16_t, int, char **);
size_t	 spool_settle(struct queue *);
void	 spool_remove(struct job *);
void	 spool_close(int);
int	 spool_result_clash(struct queue *, const char *, char **);
void	 spool_index_file(const struct job *);

/* store.c: results written to a temp file, then fsync and rename. */
struct store {
	int		 dirfd;
	int		 fd;
	char		 tmpname[64];
	const char	*final;		/* base name in dirfd */
	uint64_t	 written, synced;
	int		 lazy;		/* never synced (an archive entry's
					 * spool file): no writeback kicks */
	int		 over_tree;	/* a directory job's: a tree result of
					 * an earlier run at final is replaced */
	int		 datasynced;	/* fdatasync'd already (commit.c) */
};
extern int store_sync;		/* 0: no fdatasync/fsync (--no-sync) */
int	 store_open(struct store *, const char *, dev_t, ino_t, char **);
ssize_t	 store_write(struct store *, const void *, size_t, char **);
int	 store_commit_file(struct store *, char **);
int	 store_commit_tree(struct store *, const struct arch_limits *, char **);
int	 store_sync_dir(struct store *, char **);
void	 store_close(struct store *);
void	 store_abort(struct store *);

/* commit.c: results made durable by a thread, in batches. */
/*
 * A result up to this size travels inside its journal record (I), so that
 * its OK waits for the journal's sync alone; its file is synced and put in
 * place after (commit.c).  64 KiB: one such record costs the journal about
 * what the file's own sync would have written, a restart reads it back in
 * one piece, and a batch of JQ_INFLIGHT_MAX of them stays a few MiB.
 */
#define JQ_INLINE_MAX		(64U << 10)
struct event_base;
struct spool_add;
struct commit {
	TAILQ_ENTRY(commit)	 entry;
	struct store		 st;		/* taken over from the connection */
	struct job		*job;		/* a result's; NULL for an add */
	struct spool_add	*add;		/* an ADD's data, or NULL */
	uint64_t		 size;
	struct proto_token	 token;		/* the PUT's, for jobs_reopen */
	void			*arg;		/* the connection, or NULL if gone */
	int			 rc;		/* 0 stored and journaled */
	char			*cause;
	dev_t			 dir_dev;
	ino_t			 dir_ino;
	int			 dir_synced;
	int			 tree;		/* PUT kind=tree: unpack it */
	int			 refused;	/* the tree was refused (rc -1) */
	unsigned		 fds;		/* descriptor budget its files hold,
						 * given back when done (conn.c) */
	void			(*done)(struct commit *);	/* set: called
						 * instead of commit_start's */
	void			(*ack)(struct commit *);	/* set: a
						 * small result may be told OK
						 * once its I record is synced
						 * (called in the loop), before
						 * its file is in place */
	int			 inlined;	/* its I record is appended */
	int			 acked;		/* ack was called */
};
TAILQ_HEAD(commit_list, commit);
int	 commit_start(struct event_base *, void (*)(struct commit *), char **);
void	 commit_submit(struct commit *);
void	 commit_plug(void);
void	 commit_unplug(void);
void	 commit_stop(void);
extern int commit_early_ok;	/* --early-ok: small results (commit.c) */
size_t	 commit_flushing(void);
size_t	 commit_lost(void);

/* journal.c: the state that survives a crash of the server. */
int	 journal_open(struct queue *, const char *, int, int, int, char **);
int	 journal_add_done(const struct job *, uint64_t, char **);
int	 journal_add_inline(const struct job *, const void *, uint64_t,
	     char **);
int	 journal_sync_now(char **);
int	 journal_failed(const struct job *, char **);
int	 journal_retry(const struct job *, char **);
void	 journal_log_resume(const struct queue *);
int	 journal_was_resumed(void);
int	 journal_run_ended(void);
int	 journal_add_jobs(struct spool_add *const *, size_t, char **);
int	 journal_drain(const char *, int, char **);
void	 journal_end(const struct queue *, int, int);
void	 journal_unlock(void);
void	 journal_close(const struct queue *, int, int);
const char *journal_filename(void);
void	 journal_name_extra(char *);

/* joblog.c: --joblog, a line per finished attempt. */
int	 joblog_open(const char *, char **);
void	 joblog_start(struct job *, const char *);
void	 joblog_end(struct job *, const char *, uint64_t);

/* server.c and conn.c: the event loop, listeners and connections. */
#define JQ_CRASH_LIMIT_DEFAULT	5	/* --crash-limit, as HyperQueue's */
struct server_config {
	const char	**listen;	/* addresses */
	size_t		 nlisten;
	const char	*addr_file;
	uint64_t	 max_result;
	unsigned	 max_conns;	/* authenticated connections */
	unsigned	 max_unauth;	/* connections still authenticating */
	uint64_t	 linger_ms;	/* listen on after the end, for late TAKEs */
	uint64_t	 lease_ms;	/* default lease of a taken job */
	unsigned	 retries;	/* a failed job runs again this often */
	unsigned	 crash_limit;	/* a job whose worker is lost this often fails; 0: never */
	const struct auth_key *key;	/* NULL: --no-auth */
	int		 unix_token;	/* UNIX sockets use the token, not the uid */
	char		 user[64];	/* our user's name, for hints; "": unknown */
	uint64_t	 stall_ms;	/* a half request may pause this long */
	uint64_t	 idle_ms;	/* a connection holding nothing may idle */
	int		 result_named;	/* -r given: JOB tells result= */
	int		 keep;		/* --keep: no end but a shutdown */
	char		*archives;	/* --archive: their names; NULL: none */
};
struct event_base;
struct server {
	struct event_base	*base;
	struct server_config	 cfg;
	struct queue		 queue;
	unsigned		 nconns;	/* every connection */
	unsigned		 nauthed;	/* of which authenticated */
	unsigned		 nunauth;	/* of which in the unauth list */
	int			 finishing;	/* every job finished: TAKE gets NOJOB */
	int			 closing;	/* linger over: leave when no conns */
	unsigned		 told_workers;	/* connections told NOJOB finished */
	unsigned		 lost_workers;	/* asked for work, left untold */
	uint64_t		 worker_ms;	/* last new worker's first TAKE */
	uint64_t		 end_ms;	/* when every job had finished */
	uint64_t		 linger_until;	/* 0: not lingering */
	int			 signalled;
	unsigned		 fds_total;	/* descriptors for files: the budget */
	unsigned		 fds_free;	/* of which not reserved (conn.c) */
	int			 fds_starved;	/* a TAKE or WAIT found none free */
	struct event		*check;		/* deferred server_check */
	TAILQ_HEAD(, conn)	 conns;		/* every connection */
	TAILQ_HEAD(, conn)	 waiters;	/* TAKEs waiting for a job */
	TAILQ_HEAD(, conn)	 unauth;	/* not authenticated, oldest first */
	struct log_tally	 turned_away;	/* connections refused or dropped */
	struct log_tally	 failed_auth;	/* handshakes refused or timed out */
};
extern struct server server;
int	 server_run(char **);
int	 server_init_loop(char **);
void	 server_wake(void);
void	 server_worker_arrived(const char *);
void	 server_worker_told(const char *);
struct conn *conn_new(int);
void	 conn_free(struct conn *);
void	 conn_retake(struct conn *);
void	 conn_finish_all(void);
void	 conn_retake_all(void);
void	 conn_free_all(void);
void	 conn_commit_done(struct commit *);
void	 conn_drop_oldest_unauth(void);
void	 conn_results_all(void);
unsigned conn_unsettled(void);

/*
 * status.c: where jq-serve's run stands: its clock, the jobs resumed, the
 * status line kept under the log on a terminal, the summary at the end.
 */
void	 status_start(struct event_base *, const struct queue *);
void	 status_get(struct progress *);
void	 status_note(void);
uint64_t status_done_here(void);
void	 status_finish(void);
void	 status_end(void);

/*
 * jobs.c: the job lifecycle policy of jq-serve: holders, leases, and what
 * each end of a run does.  It calls nothing above it; jobs_init gives it the
 * queue and the hook it calls when waiting TAKEs need another look.
 */
void	 jobs_init(struct event_base *, struct queue *,
	    const struct server_config *, void (*)(void));
struct job *jobs_take(const uint16_t *, size_t, const char *, struct session *,
	    int, uint64_t);
void	 jobs_sent(struct job *, uint64_t, const char *);
void	 jobs_renew(struct job *);
void	 jobs_touch(struct job *, uint64_t);
void	 jobs_token(const struct job *, char [PROTO_TOKEN_LEN + 1]);
int	 jobs_holder_check(const struct job *, const struct proto_token *,
	    char **);
int	 jobs_is_attempt(const struct job *, const struct proto_token *);
struct job *jobs_put_target(const char *, const struct proto_token *,
	    const char **, char **);
void	 jobs_renew_held(struct session *, uint64_t);
void	 jobs_release(struct job *);
int	 jobs_reopen(struct job *, const struct proto_token *,
	    const char *);
void	 jobs_holder_gone(struct session *, const char *);
void	 jobs_flushed(struct job *);
void	 jobs_done(struct job *, uint64_t, const char *);
size_t	 jobs_unspool(void);
struct job *jobs_add(char *, char *, uint16_t, int, const char *);
void	 jobs_shutdown(const char *);
int	 jobs_stopping(void);
void	 jobs_fail_found(struct job *, const char *);
void	 jobs_fail_reported(struct job *, char *, char *, size_t, int,
	    const char *);
void	 jobs_add_deps(struct job *, const struct spool_add *);
int	 jobs_retry(struct job *, const char *, char **);
const char *jobs_outcome(const struct job *);
int	 jobs_cancel(struct job *, const char *, char **);
int	 jobs_drain(const char *, int, const char *, char **);
void	 jobs_leases_free(void);

/* payload.c: a payload the server receives (PUT's result, ADD's data, FAIL's message). */
struct evbuffer;
struct payload {
	enum proto_cmd	 cmd;		/* CMD_PUT, CMD_ADD or CMD_FAIL */
	struct job	*job;		/* NULL when refused from the start; ADD:
					 * the job of that name, with drop */
	struct spool_add *add;		/* ADD: the new job (the payload's) */
	int		 drop;		/* ADD: bytes dropped, name was a job */
	uint64_t	 left;		/* bytes left in the current DATA chunk */
	uint64_t	 total;		/* bytes received so far */
	uint64_t	 limit;		/* most bytes accepted */
	uint32_t	 crc;		/* CRC-32C of the bytes received */
	const char	*err;		/* refused: an ERR_* code; bytes are dropped */
	char		*errmsg;	/* refused: the text after the code */
	char		*iocause;	/* refused with ERR_IO: why, for the job */
	int		 storing;	/* store is open */
	struct store	 store;		/* PUT, ADD: the data being written */
	struct evbuffer	*msg;		/* FAIL: the message */
	char		*status;	/* FAIL: exit:N, signal:N or timeout; or NULL */
	int		 tempfail;	/* FAIL: tempfail=1 (EX_TEMPFAIL) */
	struct proto_token token;	/* PUT: the token it came with; else zero */
	int		 tree;		/* PUT kind=tree */
};
enum payload_next {		/* what a frame line means for the connection */
	PAYLOAD_MORE,		/* more frame lines follow */
	PAYLOAD_DATA,		/* left bytes of data follow */
	PAYLOAD_PUT,		/* a verified result is in store */
	PAYLOAD_FAIL,		/* a verified FAIL message is in msg */
	PAYLOAD_ADD,		/* an ADD's data is in store (or dropped) */
	PAYLOAD_REFUSED,	/* ended, refused: answer err and errmsg */
	PAYLOAD_ABORTED,	/* ended by ABORT: nothing stored */
	PAYLOAD_BROKEN		/* not a frame line: the stream is lost */
};
void	 payload_init(struct payload *);
void	 payload_begin(struct payload *, enum proto_cmd, struct job *, uint64_t,
	    const char *, char *);
void	 payload_data(struct payload *, struct evbuffer *, size_t);
enum payload_next payload_frame(struct payload *, const char *);
void	 payload_handover(struct payload *, struct store *);
char	*payload_message(struct payload *, size_t *);
void	 payload_reset(struct payload *);
void	 payload_free(struct payload *);

/*
 * cmd.c: the requests of jq-serve.  A handler sees a connection as its
 * session, writes its replies to an evbuffer and returns what the
 * connection does next; conn.c does it.  cmd.c never calls conn.c.
 */
struct session {
	TAILQ_ENTRY(session)	 entry;		/* in the list STAT reports */
	char			*peer;		/* address, for logs and STAT */
	char			*name;		/* worker name, decoded; or NULL */
	int			 authed;	/* may send more than HELLO */
	int			 hello;		/* HELLO was answered */
	char			 nonce[AUTH_HEX_LEN + 1];	/* our challenge */
	char			 cn[AUTH_HEX_LEN + 1];	/* the client's */
	int			 worker;	/* has sent TAKE */
	unsigned		 ndone, nfailed;
	struct job_list		 held;		/* running jobs it took */
	/* the TAKE being served (NEXT_TAKE) */
	char			*take_match;	/* decoded glob, or NULL */
	char			**take_queue;	/* queue= names; none: default */
	size_t			 take_nqueue;
	int			 take_hold_conn;
	int			 take_nowait;	/* wait=0 */
	unsigned		 take_wait_s;	/* wait=; 0: none (or wait=0) */
	uint64_t		 take_lease_ms;	/* lease=; 0: --lease */
	/* the payload being received (NEXT_PAYLOAD) */
	struct payload		 rx;
	uint64_t		 wait_id;	/* the job a WAIT waits for (NEXT_WAIT) */
};
enum cmd_next {			/* what the connection does after a request */
	NEXT_LINE,		/* read the next request */
	NEXT_CLOSE,		/* close, once the replies are out */
	NEXT_TAKE,		/* serve the TAKE in take_* */
	NEXT_PAYLOAD,		/* receive the payload begun in rx */
	NEXT_WAIT		/* serve the WAIT for job wait_id */
};
void	 cmd_session_start(struct session *, char *);
void	 cmd_session_end(struct session *);
const char *cmd_who(const struct session *);
void	 cmd_take_forget(struct session *);
void	 cmd_vreply(struct evbuffer *, const char *, va_list) JQ_PRINTF(2, 0);
enum cmd_next cmd_greet(struct session *, int, struct evbuffer *);
enum cmd_next cmd_auth_refuse(struct session *, const char *, struct evbuffer *);
enum cmd_next cmd_request(struct session *, char *, struct evbuffer *);
char	*cmd_stat_msg(const struct job *, size_t);
struct session *cmd_session_next(const struct session *);

/* listing.c: the JOBS request and STAT's QUEUE lines (the jobs one by one). */
enum cmd_next listing_jobs(struct session *, struct proto_req *, struct evbuffer *);
void	 listing_queues(const struct queue *, struct evbuffer *);

/*
 * watchdir.c: the directory jq-serve --watch serves: which of its names
 * are jobs, their job names and results, the journal's W records.
 */
struct watchdir_config {
	const char		*dir;		/* --watch DIR, as given */
	const char		*outdir;	/* -o DIR, or NULL: results in DIR */
	const char		*tmpl;		/* -r TEMPLATE */
	char *const		*match;		/* --watch-match globs; NULL: all */
	const char *const	*own;		/* the server's own files, or NULL */
};
int	 watchdir_setup(const struct watchdir_config *, char **);
int	 watchdir_active(void);
int	 watchdir_fd(void);
const char *watchdir_path(void);
const char *watchdir_real(void);
const char *watchdir_result_dir(void);
char	*watchdir_identity(void);
int	 watchdir_owns_name(const char *, size_t);
const char *watchdir_unwanted(const char *);
char	*watchdir_job_name(const char *);
char	*watchdir_result(const char *, char **);
void	 watchdir_pin(struct job *, const char *, const struct stat *);
int	 watchdir_recover(struct queue *, const char *, char *, char **);
size_t	 watchdir_settle(struct queue *);
void	 watchdir_free(void);

/*
 * watch.c: jq-serve --watch: inotify through the event loop; the files
 * closed after writing or moved into the directory become jobs.
 */
int	 watch_setup(const struct watchdir_config *, int, char **);
void	 watch_start(struct event_base *);
void	 watch_stop(void);
int	 watch_lost(void);

/*
 * drain.c: the workers drained (DRAIN): patterns matched against a worker
 * name and its node; a matching worker gets no job.
 */
int	 drain_add(const char *);
int	 drain_remove(const char *);
int	 drain_has(const char *);
int	 drain_match(const char *, const char *);
int	 drain_matches(const char *);
size_t	 drain_count(void);
const char *drain_get(size_t);
void	 drain_free(void);

/* manage.c: the requests that change the queue by hand: CANCEL, DRAIN, UNDRAIN. */
struct job *manage_job(struct proto_req *, const char **, char **);
enum cmd_next manage_cancel(struct session *, struct proto_req *, struct evbuffer *);
enum cmd_next manage_drain(struct session *, struct proto_req *, struct evbuffer *);
enum cmd_next manage_undrain(struct session *, struct proto_req *, struct evbuffer *);

/* wait.c: WAIT, a client waiting for a job's end; its result sent back. */
struct wait_result {			/* a result file opened to be sent */
	int		 fd;
	uint64_t	 size;
	int64_t		 mtime_ns;
	int		 tree;		/* a tree result, packed: kind=tree */
};
enum cmd_next wait_request(struct session *, struct proto_req *, struct evbuffer *);
int	 wait_ended(const struct job *);
void	 wait_reply_waiting(const struct job *, struct evbuffer *);
void	 wait_reply_failed(const struct job *, struct evbuffer *);
void	 wait_reply_result(const struct job *, const struct wait_result *,
	    struct evbuffer *);
int	 wait_open_result(const struct job *, struct wait_result *, char **);
char	*wait_result_check(const struct job *, const struct wait_result *,
	    int);

/* template.c: jq-run's command templates (<in> <out> <out.EXT> <outdir> <name> <id>). */
enum template_kind {
	TEMPLATE_TEXT, TEMPLATE_IN, TEMPLATE_OUT, TEMPLATE_NAME, TEMPLATE_ID,
	TEMPLATE_OUTDIR
};
#define TEMPLATE_USES_IN	0x1
#define TEMPLATE_USES_OUT	0x2
#define TEMPLATE_USES_NAME	0x4
#define TEMPLATE_USES_ID	0x8
#define TEMPLATE_USES_OUTDIR	0x10
#define TEMPLATE_BASE_MAX	200	/* bytes of a job's file name in the temp dir */
#define TEMPLATE_EXT_MAX	32	/* bytes of EXT in <out.EXT>: base + . + EXT fit NAME_MAX */
struct template;
struct template_vars {			/* what the placeholders stand for */
	const char	*in;		/* path of the job's data */
	const char	*out;		/* result path, .EXT included */
	const char	*name;		/* the job's name */
	const char	*id;		/* the job's id */
	const char	*outdir;	/* the result tree's directory */
};
struct template *template_parse(int, char *const [], char **);
int	 template_uses(const struct template *);
const char *template_out_ext(const struct template *);
char	**template_expand(const struct template *, const struct template_vars *);
void	 template_argv_free(char **);
void	 template_free(struct template *);
const char *template_stem_end(const char *);
char	*template_basename(const char *);
char	*template_stem(const char *);

/*
 * serve.c: jq-serve's start-up: the files to serve, where their results go,
 * and the checks made before anything listens.  Like a main, it reports on
 * stderr and exits with a JQ_EXIT_* status when a check fails.
 */
struct serve_files {			/* names from the operands and --files-from */
	char	**v;
	size_t	 n, alloc;
};
void	 serve_files_add(struct serve_files *, char *);
void	 serve_files_read(struct serve_files *, const char *, int);
char	*serve_result_name(const char *, const char *, char **);
void	 serve_keep_outdir(void);
void	 serve_load(struct queue *, struct serve_files *, const char *,
	    const char *, int);
size_t	 serve_skip_current(struct queue *, int);

/*
 * archsrc.c: jq-serve --archive: each regular entry of an archive is a job,
 * spooled as an added job's data is, read ahead only a little.
 */
struct event_base;
void	 archsrc_setup(char *const *, size_t);
int	 archsrc_active(void);
char	*archsrc_identity(void);
int	 archsrc_check(const char *, int, char **);
int	 archsrc_busy(void);
int	 archsrc_status(void);
void	 archsrc_wake(void);
void	 archsrc_start(struct event_base *);
void	 archsrc_stop(int);

/* archout.c: jq-serve --output-archive: the results in one archive, renamed
 * into place at the end. */
int	 archout_setup(const char *, char **);
int	 archout_active(void);
const char *archout_result_dir(const char *, const char *);
void	 archout_feed(const struct queue *);
int	 archout_write(const struct queue *, char **);
void	 archout_clean(const struct queue *);
void	 archout_free(void);

/* spawn.c: run a command the careful way (own process group, clean fds). */
#define SPAWN_PIPE	(-1)	/* connect the stream to a pipe to jq-run */
#define SPAWN_NULL	(-2)	/* connect the stream to /dev/null */
struct spawn {
	pid_t		 pid;		/* also its process group id */
	int		 fd_in;		/* our end of its stdin pipe, or -1 */
	int		 fd_out;	/* our end of its stdout pipe, or -1 */
	int		 fd_err;	/* our end of its stderr pipe, or -1 */
	int		 exited;	/* 1 once reaped */
	int		 status;	/* wait status once exited */
};
char	**spawn_env(const char *const []);
void	 spawn_env_free(char **);
int	 spawn_start(struct spawn *, char *const [], char *const [], int, int,
	    int, char **);
int	 spawn_reap(struct spawn *);
int	 spawn_wait(struct spawn *);
int	 spawn_kill(const struct spawn *, int);
void	 spawn_close_fds(struct spawn *);
int	 spawn_status(int, char *, size_t);
char	*spawn_resolve(const char *, char **);
void	 spawn_signal_changed(int);

/*
 * run.c: jq-run's worker: slots that take jobs and run the command (with
 * slot.c, slotconn.c, runjob.c, relay.c, runsig.c; private header run.h).
 */
struct run_config {
	const char	*server;	/* address; NULL: $JQ_SERVER */
	const char	*worker;	/* worker name; NULL: HOSTNAME:PID */
	struct template	*tpl;
	unsigned	 jobs;		/* slots, each one job at a time */
	uint64_t	 timeout_ms;	/* per job; 0: none */
	uint64_t	 max_jobs;	/* in total; 0: no limit */
	const char	*match;		/* TAKE match= glob, or NULL */
	const char	*queues;	/* TAKE queue= list, or NULL: default */
	const char	*tmpdir;	/* absolute directory for job dirs */
	int		 keep_tmp;
	int		 verbose;
	uint64_t	 reconnect_ms;	/* retry a lost server this long; 0: exit 6 */
	int		 keep;		/* wait for the next server, never give up */
	unsigned	 halt_after;	/* stop after this many failures in a row
					 * while others succeed; 0: never */
	const struct arch_limits *tree;	/* unpacking and packing trees */
};
int	 run_main(const struct run_config *);

#endif /* JQ_H */
