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

#ifndef JQ_VERSION
#define JQ_VERSION "0.1.0"
#endif

#define JQ_PRINTF(a, b)	__attribute__((format(printf, a, b)))
#define JQ_NORETURN	__attribute__((noreturn))

/*
 * Exit statuses, shared by every tool and listed under EXIT STATUS in every
 * man page.  Keep the pages in step when this list changes.
 */
#define JQ_EXIT_OK		0	/* success */
#define JQ_EXIT_FAILED		1	/* jq-serve, jq-run: some job failed */
#define JQ_EXIT_USAGE		2	/* bad option, operand or value */
#define JQ_EXIT_NOWORK		3	/* jq-take: no job remains, nor will */
#define JQ_EXIT_REFUSED		4	/* the server refused: result already stored, unknown job */
#define JQ_EXIT_TIMEOUT		5	/* jq-take --wait ran out */
#define JQ_EXIT_CONNECT		6	/* cannot reach the server, or lost it */
#define JQ_EXIT_PROTOCOL	7	/* the server answered an error or spoke nonsense */
#define JQ_EXIT_IO		8	/* a local file or system call failed */
#define JQ_EXIT_SIGNAL		9	/* stopped by SIGINT or SIGTERM before the end */

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
int	 parse_size(const char *, uint64_t *);
int	 parse_duration(const char *, uint64_t *);	/* milliseconds */

/* crc32c.c: CRC-32C (Castagnoli), hardware-accelerated where available. */
uint32_t crc32c_update(uint32_t, const void *, size_t);

/* proto.c: request and frame parsing, name encoding (see proto.h). */
int	 proto_parse_request(char *, struct proto_req *, char **);
int	 proto_parse_frame(const char *, struct proto_frame *);
const char *proto_kv(const struct proto_req *, const char *);
const char *proto_cmd_name(enum proto_cmd);
size_t	 proto_encode(char *, size_t, const void *, size_t);
size_t	 proto_encoded_len(const void *, size_t);
char	*proto_encode_dup(const void *, size_t);
ssize_t	 proto_decode(char *);
char	*proto_word(char **);
const char *proto_word_kv(const char *, const char *, size_t *);

/* net.c: addresses, listening and connecting. */
#define NET_ADDR_MAX 160
struct net_addr {
	int	 unix_path;		/* 1: path in host, 0: TCP */
	char	 host[4096];		/* host name, IP literal or UNIX path; "" = any */
	char	 port[16];
};
int	 net_parse_addr(const char *, int, struct net_addr *, char **);
int	 net_listen(const struct net_addr *, int *, size_t *, size_t, char **);
int	 net_connect(const char *, char **);
void	 net_unlink_unix(const struct net_addr *);
char	*net_fd_name(int, int);
const char *net_default_server(const char *);

/* log.c: the server's log on stderr. */
void	 log_init(const char *, int);
void	 log_info(const char *, ...) JQ_PRINTF(1, 2);
void	 log_warnx(const char *, ...) JQ_PRINTF(1, 2);
void	 log_debug(const char *, ...) JQ_PRINTF(1, 2);
int	 log_verbose(void);

/*
 * client.c: a blocking client connection, used by jq-take, jq-put, jq-stat
 * and jq-run.  On failure functions return -1, set *cause, and remember in
 * client_status() which JQ_EXIT_* status fits the failure.
 */
struct client;
struct client_job {
	char		*id;		/* owned by the client_job */
	char		*name;		/* decoded, NUL-terminated; may hold any byte but NUL */
	size_t		 namelen;
	uint64_t	 size;		/* announced size, UINT64_MAX if unknown */
	unsigned	 attempt;
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
int	 client_put_fd(struct client *, const char *, int, char **);
int	 client_fail(struct client *, const char *, const char *, const void *, size_t, char **);
int	 client_simple(struct client *, char **, const char *, ...) JQ_PRINTF(3, 4);

/* util.c: small shared helpers. */
int	 util_write_all(int, const void *, size_t);
int	 util_cloexec(int);
int	 util_nonblock(int, int);
uint64_t util_now_ms(void);	/* monotonic */
char	*util_worker_name(void);
int	 util_atomic_write(const char *, const void *, size_t, char **);
void	 usage_error(const char *, const char *, ...) JQ_PRINTF(2, 3) JQ_NORETURN;

#endif /* JQ_H */
