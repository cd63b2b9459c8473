/*
 * fdprobe: what a command started by jq-run inherits, seen from inside it.
 *
 * Prints, on one line each: the open descriptors ("0 1 2 "), the blocked
 * and ignored signal masks in /proc's "SigBlk:\t%016llx" form, and "own
 * group" when the process leads its own process group.  It opens nothing
 * itself (it probes descriptors with fcntl rather than listing /proc/self/fd,
 * which needs a descriptor of its own), so what it prints is exactly what it
 * was given.  Used by tests/run.bats.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define PROBE_FD_MAX 1024	/* descriptors probed: far above what a command gets */

/* Print the fds that are open, then the signal masks and the group. */
int
main(void)
{
	unsigned long long blocked = 0, ignored = 0;
	sigset_t set;
	struct sigaction sa;
	int fd, sig;

	for (fd = 0; fd < PROBE_FD_MAX; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			printf("%d ", fd);
	if (sigprocmask(SIG_BLOCK, NULL, &set) == -1)
		return 1;
	for (sig = 1; sig < 64; sig++) {
		if (sigismember(&set, sig) == 1)
			blocked |= 1ULL << (sig - 1);
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			ignored |= 1ULL << (sig - 1);
	}
	printf("SigBlk:\t%016llx\nSigIgn:\t%016llx\n", blocked, ignored);
	if (getpgrp() == getpid())
		printf("own group\n");
	return fflush(stdout) == 0 ? 0 : 1;
}
