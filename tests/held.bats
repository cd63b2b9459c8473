#!/usr/bin/env bats
# tests/held.bats: a server killed (kill -9) and restarted while jq-run's slots run jobs it
# handed out.  The restarted server has those jobs waiting again; a slot must not take one of
# them while another slot still holds it (its command running on, or its result not yet
# answered), or the job runs twice and one of its two results is refused.  jq-run's slots ask
# for no job until the held results are in.
#
# No timing: each job's command waits for a go file of its own (or the common one), so the test
# decides which job ends when; every wait is a bounded loop for a file, a line or a process.

# shellcheck disable=SC2154 # $output and $status are set by bats' run

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
	mkdir -p "$D/out"
}

teardown() {
	jq_teardown
}

# serve_pid: the pid of jq-serve itself ($SERVER_PID is its watchdog)
serve_pid() {
	pgrep -P "$SERVER_PID" 2>/dev/null | head -n 1
}

@test "kill -9 the server while jq-run -j2 runs two slow jobs, restart it: no slot takes a held job, every result stored once" {
	local f args pid wpid
	for f in a b c d; do printf '%s data\n' "$f" >"$D/in/$f"; done
	export RUNS=$D/runs M
	: >"$RUNS"
	args=(-v -l "unix:$JQ_TMP/sock" -o "$D/out" "$D"/in/{a,b,c,d})
	start_server "${args[@]}"
	# each command logs its job's base name and waits for $M/go.NAME or $M/go
	jq_bg jq-run -j 2 -v --reconnect 60s --tmpdir "$TMPD" "$SERVER" -- sh -c '
		b=${JQ_JOB_NAME##*/}
		echo "$b" >>"$RUNS"
		n=0
		while [ ! -e "$M/go.$b" ] && [ ! -e "$M/go" ] && [ $n -lt 1200 ]; do
			sleep 0.05; n=$((n + 1))
		done
		exec tr a-z A-Z' 2>"$D/w.err"
	wpid=${JQ_PIDS[-1]}
	wait_for_line "$RUNS" "" 2
	pid=$(serve_pid)
	kill -KILL "$pid"
	wait_server_exit 30
	start_server "${args[@]}"
	# one of the two ends: its slot delivers, then waits for the other's, not taking it again
	touch "$M/go.$(head -n 1 "$RUNS")"
	wait_for_line "$D/w.err" "waiting for the results of jobs other slots hold"
	touch "$M/go"
	wait_pid "$wpid" 60
	assert_equal "$status" 0
	# every job ran once, was stored once, right; nothing refused
	run -0 sort "$RUNS"
	assert_output $'a\nb\nc\nd'
	for f in a b c d; do
		assert_equal "$(<"$D/out/$f.result")" "${f^^} DATA"
	done
	run -0 grep -c 'attempts run: 4 done, 0 failed, in' "$D/w.err"
	run grep -F 'not kept' "$D/w.err"
	assert_failure
}

@test "a result whose answer never came (the server died storing it) is counted unconfirmed, not done" {
	command -v strace >/dev/null || skip "strace is not installed"
	mkdir "$D/bin"
	# the server is killed at its first fdatasync: the result's, before its OK
	printf '#!/bin/sh\nexec strace -f -o /dev/null -e trace=fdatasync -e inject=fdatasync:signal=SIGKILL:when=1 %s "$@"\n' \
		"$(command -v jq-serve)" >"$D/bin/jq-serve"
	chmod +x "$D/bin/jq-serve"
	printf 'x\n' >"$D/a"
	PATH=$D/bin:$PATH start_server_unix "$D/a"
	run --separate-stderr timeout -k 5 60 jq-run --reconnect 1 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$status" 6
	[[ $stderr == *"the connection was lost before the server confirmed the result"* ]] || fail "$stderr"
	[[ $stderr == *"1 attempt run: 0 done, 0 failed, 1 result unconfirmed (the connection was lost before the answer)"* ]] || fail "$stderr"
}
