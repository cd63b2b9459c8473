/*
 * run.h: the private header of jq-run's worker; jq.h holds only run_main
 * and struct run_config.
 *
 * Six files, and the calls between them run one way, from the top down:
 *
 *   run.c       the parent: forks the slots, relays signals, reaps them
 *   slot.c      a slot: takes jobs, runs each one through its steps, acts on
 *               their verdicts, delivers results and failures
 *   slotconn.c  a slot's connection: the ring of replies owed, reading them,
 *               dropping and reopening the connection, prefetching the next
 *               TAKE, the --max-jobs counter
 *   runjob.c    one job: its temp dir, the command, the poll loop, its outcome
 *   relay.c     a command's output: lines with a prefix, the stderr tail;
 *               rmtree; printable labels
 *   runsig.c    the signal flags and the self-pipe, used by all but relay.c
 *   runshare.c  what the slots share: counters, the halt, messages said once
 *
 * slot.c calls slotconn.c and runjob.c, which do not call each other.  A
 * job's steps return a verdict to the slot instead of acting on the
 * connection's state themselves: the slot owns the connection (it sends
 * keep-alives, reads replies, drops and reopens it), the job only moves
 * payload and result bytes through it.
 */
#ifndef RUN_H
#define RUN_H

#include <signal.h>

#include "jq.h"

#define RUN_BUF		(64U << 10)	/* one read of the command's stdout */
#define RUN_TAIL	JQ_MSG_KEEP	/* stderr bytes kept for FAIL */
#define RUN_EX_TEMPFAIL	75	/* EX_TEMPFAIL: FAIL says tempfail=1 */

/* runsig.c: this process's signal state; the handler touches nothing else. */
extern volatile sig_atomic_t	run_signals;	/* parent: SIGINT/TERM/HUP seen */
extern volatile sig_atomic_t	run_stop;	/* slot: 1 SIGUSR1, 2 SIGUSR2 */
extern volatile sig_atomic_t	run_child;	/* SIGCHLD seen */
extern int			run_wake[2];	/* slot: self-pipe */
void	 run_on_signal(int);
void	 run_sigaction(int, void (*)(int));
void	 run_drain_wake(void);

/* relay.c: a stream copied to one of our descriptors line by line. */
struct run_lines {
	int	 fd;
	char	*buf;			/* prefix, then the pending line */
	size_t	 prefix;
	size_t	 len;			/* bytes used, prefix included */
};
/* The last RUN_TAIL bytes of a stream. */
struct run_tail {
	char	 buf[RUN_TAIL];
	size_t	 len;			/* bytes held, at most RUN_TAIL */
	size_t	 head;			/* where the next byte goes */
};
void	 run_lines_init(struct run_lines *, int, const char *);
void	 run_lines_add(struct run_lines *, const char *, size_t);
void	 run_lines_end(struct run_lines *);
void	 run_tail_add(struct run_tail *, const char *, size_t);
size_t	 run_tail_get(const struct run_tail *, char *);
char	*run_label(const char *);

/*
 * runjob.c: one job.  Each step returns what the slot must do next.
 */
enum run_verdict {
	RUN_DONE,		/* the step is over: go on */
	RUN_FATAL,		/* a local failure, said already: exit JQ_EXIT_IO */
	RUN_LOST,		/* the connection failed (j->cause, if set, says how)
				 * or, from run_job_offline, the job cannot run on */
	RUN_STOPPED,		/* SIGUSR2: kill the command, hand the job back */
	RUN_IDLE,		/* the server has not heard from us for a while:
				 * the slot sends a keep-alive, then steps again */
	RUN_SOCKET,		/* the server sent something that is not payload
				 * (a reply owed, or the connection closing): the
				 * slot reads it, then steps again */
	RUN_NOEXEC		/* the command could not be started (j->cause):
				 * the node's fault, not the job's */
};

/*
 * What a slot lends the job it runs.  The job reads and writes through c
 * but never changes it: only the slot connects, drops the connection (c
 * is then NULL) and reads replies.  The buffers are reused job after job.
 */
struct run_link {
	const struct run_config	*cfg;
	char			*worker;
	struct client		*c;		/* NULL while the server is away */
	uint64_t		 keepalive_ms;	/* a third of the job's lease */
	char			*buf;		/* RUN_BUF: a read of stdout, stderr */
	char			*hold;		/* RUN_BUF: stdout held before the PUT */
	char			*inbuf;		/* payload bytes waiting for stdin */
	size_t			 insize;
	char			*tdir;		/* T kept for the next job, or NULL */
	dev_t			 tdev;		/* and what it is */
	ino_t			 tino;
};

/* The state of the job a slot runs. */
struct run_job {
	struct run_link		*link;		/* the slot's */
	struct client_job	*cj;
	char			*label;		/* the name, printable, for messages */
	char			*dir;		/* T */
	char			*in;		/* T/in/BASENAME or NULL */
	char			*out;		/* T/out/STEM[.EXT], T/tree.tar for
						 * <outdir>, or NULL */
	char			*outdir;	/* T/outdir or NULL */
	char			*intar;		/* a tree job with <in>: T/in.tar */
	char			*refused;	/* a tree job's data refused: why */
	int			 in_fd;		/* <in> while it is received, or -1 */
	struct spawn		 sp;
	int			 started;	/* sp holds a process */
	struct client_rx	 rx;
	int			 rx_done;	/* payload read to its END */
	size_t			 inlen, inoff;	/* bytes of link->inbuf for stdin */
	struct client_tx	 tx;
	int			 put_started;	/* PUT line sent, payload open */
	size_t			 held;		/* bytes of stdout in link->hold */
	size_t			 unsent;	/* bytes of link->buf lost with the
						 * PUT they began: for the spool */
	int			 offline;	/* lost the server while running */
	char			*spool;		/* offline: stdout kept here, or NULL */
	int			 spool_fd;
	uint64_t		 start;		/* ms, monotonic */
	uint64_t		 deadline;	/* --timeout, 0: none */
	uint64_t		 kill_at;	/* SIGKILL after the grace, 0: none */
	uint64_t		 last_sent;	/* ms: when the server last heard us */
	unsigned		 gen;		/* the slot's connection it came on */
	int			 timed_out;
	int			 stop_noted;	/* SIGUSR1 logged */
	struct run_lines	 out_lines;	/* stdout when it is not the result */
	struct run_lines	 err_lines;
	struct run_tail		 tail;
	char			*cause;		/* RUN_LOST: why; the slot takes it */
};

/* How a job that ran to its end is reported. */
struct run_outcome {
	int	 ok;			/* a result goes out (PUT), else FAIL */
	char	 how[64];		/* for messages: "exit 1", "timed out" */
	char	 kv[64];		/* FAIL's status field, "" for none */
	int	 tempfail;		/* exit RUN_EX_TEMPFAIL: not a failure here */
	char	*reason;		/* our own line after the stderr tail */
	int	 fd;			/* ok: the result file, or -1 (stdout) */
	int	 tree;			/* ok: fd holds the <outdir> tree */
};

void	 run_job_init(struct run_job *, struct run_link *, struct client_job *);
enum run_verdict run_job_prepare(struct run_job *);
enum run_verdict run_job_receive(struct run_job *);
enum run_verdict run_job_spawn(struct run_job *);
enum run_verdict run_job_loop(struct run_job *, int);
enum run_verdict run_job_offline(struct run_job *);
int	 run_job_unreported(const struct run_job *);
void	 run_job_outcome(struct run_job *, struct run_outcome *);
char	*run_job_fail_msg(const struct run_job *, const char *, size_t *);
int	 run_job_resend(struct run_job *);
void	 run_job_abandon(struct run_job *);
void	 run_job_kill(struct run_job *);
void	 run_job_free(struct run_job *);
void	 run_link_end_dir(struct run_link *);

/*
 * slotconn.c: a slot's connection and what the server owes on it.  The
 * slot's struct is shared by slot.c and slotconn.c only.
 */
enum run_owed_kind {
	OWED_TOUCH, OWED_ABORTED, OWED_RESULT, OWED_FAILURE, OWED_RELEASE
};
struct run_owed {			/* a reply owed, in request order */
	enum run_owed_kind	 kind;
	char			*id;		/* NULL for OWED_TOUCH */
	char			*label;
};
/*
 * What a slot did, for jq-run's summary: in a mapping shared with the
 * parent, written by the slot alone and read once it has exited.
 */
struct run_tally {
	uint64_t		 done;		/* results delivered */
	uint64_t		 failed;	/* jobs whose command failed */
	uint64_t		 refused;	/* results the server did not keep:
						 * it had one (status 4) */
	uint64_t		 unstored;	/* results the server could not
						 * store (ERR IO, any other) */
	uint64_t		 tempfail;	/* exited 75: to run again (not failed) */
	uint64_t		 unconfirmed;	/* results sent, the connection lost
						 * before the server's answer */
};
/*
 * runshare.c: the state every slot of this jq-run shares (run_share_new in
 * the parent, before the fork); run_self is the slot's own index.
 */
extern unsigned	 run_self;
void	 run_share_new(unsigned);
void	 run_share_free(void);
struct run_tally *run_share_tally(unsigned);
uint64_t *run_share_taken(void);
uint64_t run_share_done(void);
uint64_t run_share_streak(int);
uint64_t run_share_running(int);
int	 run_share_halted(void);
int	 run_share_halt(void);
void	 run_share_finish(void);
int	 run_share_finished(void);
uint64_t run_share_held(int);
void	 run_say(const char *, ...) JQ_PRINTF(1, 2);

/* Why a slot (re)connects: its start, a lost server, the next one (--keep). */
enum run_connect { RUN_CONNECT_FIRST, RUN_CONNECT_LOST, RUN_CONNECT_NEXT };
struct run_slot {
	struct run_link		 link;		/* lent to the running job */
	char			*take;		/* the TAKE request line */
	uint64_t		*counter;	/* shared --max-jobs counter or NULL */
	struct run_tally	*tally;		/* this slot's, shared with the parent */
	int			 status;	/* exit status once fatal */
	int			 failed;	/* some job failed */
	struct run_owed		*owed;		/* ring of replies owed, oldest first */
	size_t			 owed_cap, owed_head, nowed;
	int			 prefetched;	/* a TAKE wait=0 went with the result */
	size_t			 before_take;	/* owed replies that precede its reply */
	int			 counted;	/* the next TAKE is counted (--max-jobs) */
	int			 lost;		/* s->link.c is NULL: reconnect first */
	enum run_connect	 why;		/* ... and why */
	unsigned		 gen;		/* connections made so far */
	unsigned		 idle_next;	/* --keep: "no more work" in a row */
	int			 holding;	/* counted in run_share_held */
};
void	 run_conn_owe(struct run_slot *, enum run_owed_kind, const char *,
	    const char *);
void	 run_conn_drop(struct run_slot *);
int	 run_conn_fatal(struct run_slot *, char *);
int	 run_conn_reconnect(struct run_slot *, int);
int	 run_conn_await_close(struct run_slot *);
int	 run_conn_reply(struct run_slot *);
int	 run_conn_hangup(struct run_slot *);
int	 run_conn_settle(struct run_slot *);
/* The counts of a STAT reply a slot asks for (--halt-after). */
struct run_stat {
	uint64_t	 running, done;
	uint64_t	 reported;	/* failures the connected workers reported */
};
int	 run_conn_stat(struct run_slot *, struct run_stat *);
void	 run_conn_nap(const struct run_slot *, uint64_t, int);
int	 run_conn_count(struct run_slot *);
int	 run_conn_prefetch(struct run_slot *, int);
int	 run_conn_wait(struct run_slot *);
void	 run_conn_close(struct run_slot *);

/* slot.c: a slot process, which takes jobs and runs them one at a time. */
int	 run_slot_main(const struct run_config *, const char *,
	    const sigset_t *, pid_t);

#endif /* RUN_H */
