#!/usr/bin/env bats
# tests/nodes.bats: workers and servers started in any order, and a bad node that cannot sink a
# run (issue 10): the first connection waits like a reconnect, --keep waits for the next server,
# a command that cannot start hands its job back, --halt-after, one message per worker.
#
# Nothing here depends on timing: a test that needs a worker to be waiting waits for the line
# it logs; servers on a fixed address use a port free_tcp_port found free.

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run
# shellcheck disable=SC2030,SC2031 # bats runs each test in a subshell: $status is its own
# shellcheck disable=SC2016 # the commands' $M, $1 are for the shell jq-run starts

setup() {
	load test_helper/common
	jq_setup root sock worker
	for f in a b c d e f; do echo "data $f" >"$D/in/$f.txt"; done
}

teardown() {
	jq_teardown
}

# worker_bg NAME ARG...: jq-run ARG... in the background, stdout in $D/NAME.out, stderr in
# $D/NAME.err, its pid in $WPID
worker_bg() {
	local name=$1
	shift
	timeout -k 5 120 jq-run --tmpdir "$TMPD" "$@" >"$D/$name.out" 2>"$D/$name.err" 3>&- &
	WPID=$!
	JQ_PIDS+=("$WPID")
}

@test "a worker started before its server waits for it, says so once, then runs every job" {
	local port
	port=$(free_tcp_port)
	worker_bg w -j 3 "127.0.0.1:$port" -- tr a-z A-Z
	wait_for_line "$D/w.err" "waiting for 127.0.0.1:$port (for at most 1m00s)"
	start_server --fresh -l "127.0.0.1:$port" "$D"/in/*.txt
	wait_pid "$WPID" 60
	assert_equal "$status" 0
	wait_server_exit 30
	assert_equal "$status" 0
	for f in a b c d e f; do
		assert_equal "$(cat "$D/in/$f.txt.result")" "DATA ${f^^}"
	done
	# three slots, one message of each kind
	assert_equal "$(grep -c 'cannot connect' "$D/w.err")" 1
	assert_equal "$(grep -c 'waiting for' "$D/w.err")" 1
	assert_equal "$(grep -c "connected to 127.0.0.1:$port" "$D/w.err")" 1
	grep -q "6 attempts run: 6 done, 0 failed" "$D/w.err"
}

@test "jq-run --keep: each server it served ends without lingering for its returns, and it says 'no more work' once a server, not once a reconnect" {
	local port
	port=$(free_tcp_port)
	mkdir -p "$D/k"
	printf 'data x\n' >"$D/k/x.txt"
	printf 'data y\n' >"$D/k/y.txt"
	printf 'data z\n' >"$D/k/z.txt"
	worker_bg w --keep -j 1 "127.0.0.1:$port" -- tr a-z A-Z
	wait_for_line "$D/w.err" "waiting for 127.0.0.1:$port"
	(cd "$D/k" && printf '%s\0' ./*.txt |
		timeout -k 5 60 xargs -0 -n 1 jq-serve -vv --fresh -l "127.0.0.1:$port") \
		>"$D/xargs.out" 2>&1
	for f in x y z; do
		assert_equal "$(cat "$D/k/$f.txt.result")" "DATA ${f^^}"
	done
	# the worker's returns after the end are no news of more workers
	run grep -c 'a worker arrived after the end' "$D/xargs.out"
	assert_output 0
	assert_equal "$(grep -c 'has no more work; --keep: waiting for the next server there' "$D/w.err")" 3
	kill -TERM "$WPID"
	wait_pid "$WPID" 30
}

@test "--reconnect 0: an unreachable server exits 6 at once, with one message for all slots" {
	run --separate-stderr timeout -k 5 30 jq-run -j 4 --reconnect 0 --tmpdir "$TMPD" \
		127.0.0.1:1 -- cat
	assert_equal "$status" 6
	assert_equal "$(grep -c 'cannot connect to 127.0.0.1:1' <<<"$stderr")" 1
	[[ $stderr != *"waiting for"* ]]
}

@test "a worker that waits too long for its first server gives up with exit 6" {
	run --separate-stderr timeout -k 5 30 jq-run -j 2 --reconnect 300ms --tmpdir "$TMPD" \
		127.0.0.1:1 -- cat
	assert_equal "$status" 6
	[[ $stderr == *"waiting for 127.0.0.1:1 (for at most 0.3 s)"* ]]
	[[ $stderr == *"gave up waiting"* ]]
}

@test "jq-run --keep serves three servers started one after another by xargs -n 2" {
	local port
	port=$(free_tcp_port)
	worker_bg w --keep -j 2 "127.0.0.1:$port" -- tr a-z A-Z
	wait_for_line "$D/w.err" "waiting for 127.0.0.1:$port"
	(cd "$D/in" && printf '%s\0' ./*.txt |
		timeout -k 5 60 xargs -0 -n 2 jq-serve --fresh -l "127.0.0.1:$port") \
		>"$D/xargs.out" 2>&1
	for f in a b c d e f; do
		assert_equal "$(cat "$D/in/$f.txt.result")" "DATA ${f^^}"
	done
	# still there, waiting: a fourth server is served too (how many "has no more work"
	# lines that took is not fixed: slots say a message once between them in 10 s)
	grep -q "has no more work; --keep: waiting for the next server there" "$D/w.err"
	printf 'data g\n' >"$D/g.txt"
	timeout -k 5 60 jq-serve --fresh -l "127.0.0.1:$port" "$D/g.txt" >"$D/serve4.out" 2>&1
	assert_equal "$(cat "$D/g.txt.result")" "DATA G"
	kill -0 "$WPID"
	kill -TERM "$WPID"
	wait_pid "$WPID" 30
	assert_equal "$status" 9
	grep -q "7 attempts run: 7 done, 0 failed" "$D/w.err"
	assert_equal "$(ls -A "$TMPD")" ""
}

@test "a missing command next to a healthy node: the bad node exits 2 before taking a job" {
	start_server --fresh "$D"/in/*.txt
	run --separate-stderr timeout -k 5 30 jq-run --tmpdir "$TMPD" "$SERVER" -- nosuchcmd '<in>'
	assert_equal "$status" 2
	[[ $stderr == *"cannot run COMMAND"*"nosuchcmd"*"no job taken"* ]]
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" "$SERVER" -- cat
	assert_success
	wait_server_exit 30
	assert_equal "$status" 0
	grep -q "6 jobs: 6 done, 0 failed" "$SERVER_LOG"
}

# a command that can be found at start but not run when the job comes: its job goes back
noexec_case() {
	local port=$1 in=$2
	printf '#!/bin/sh\nexec cat "$@"\n' >"$D/cmd"
	chmod +x "$D/cmd"
	worker_bg bad -j 2 "127.0.0.1:$port" -- "$D/cmd" ${in:+"$in"}
	wait_for_line "$D/bad.err" "waiting for 127.0.0.1:$port"
	chmod -x "$D/cmd"
	start_server --fresh -l "127.0.0.1:$port" "$D"/in/*.txt
	wait_pid "$WPID" 60
	assert_equal "$status" 2
	grep -q "cannot run $D/cmd: Permission denied; job [0-9]* (.*) handed back; this worker stops" \
		"$D/bad.err"
	run grep -q "failed: exit" "$D/bad.err"
	assert_failure
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" "127.0.0.1:$port" -- cat
	assert_success
	wait_server_exit 30
	assert_equal "$status" 0
	grep -q "6 jobs: 6 done, 0 failed" "$SERVER_LOG"
	for f in a b c d e f; do
		assert_equal "$(cat "$D/in/$f.txt.result")" "data $f"
	done
	assert_equal "$(ls -A "$TMPD")" ""
}

@test "a command that cannot be started (<in> job): the job is handed back, not failed; the worker stops" {
	noexec_case "$(free_tcp_port)" '<in>'
}

@test "a command that cannot be started (stdin job): its data is read, the job handed back" {
	noexec_case "$(free_tcp_port)" ''
}

@test "--halt-after: when no worker succeeds, the failures are the jobs' own and the worker goes on" {
	start_server --fresh "$D"/in/*.txt
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 1 --halt-after 2 \
		"$SERVER" -- sh -c 'exit 3'
	assert_equal "$status" 1
	[[ $stderr == *"6 attempts run: 0 done, 6 failed"* ]]
	[[ $stderr != *stopping* ]]
	wait_server_exit 30
	assert_equal "$status" 1
}

@test "--halt-after 0 never stops a failing worker; bad values are usage errors" {
	start_server --fresh "$D"/in/*.txt
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" --max-jobs 1 "$SERVER" -- cat
	assert_success
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 1 --halt-after 0 \
		"$SERVER" -- sh -c 'exit 3'
	assert_equal "$status" 1
	[[ $stderr == *"5 attempts run: 0 done, 5 failed"* ]]
	[[ $stderr != *stopping* ]]
	run --separate-stderr jq-run --halt-after -1 "$SERVER" -- cat
	assert_equal "$status" 2
	run --separate-stderr jq-run --halt-after x "$SERVER" -- cat
	assert_equal "$status" 2
}

# gate_cmd: a command whose first job waits for $M/go (leaving $M/started), then cats <in>
gate_cmd=(sh -c 'if [ ! -e "$M/started" ]; then echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; fi; cat "$1"' gate '<in>')

@test "--halt-after: a bad node started with a healthy one waits for the healthy one's job, then stops" {
	local f
	for f in g h i j; do echo "data $f" >"$D/in/$f.txt"; done
	start_server --fresh --retries 2 "$D"/in/*.txt
	worker_bg healthy -j 1 --worker healthy "$SERVER" -- "${gate_cmd[@]}"
	local hpid=$WPID
	wait_for_file "$M/started"
	# nobody has succeeded yet: five failures, then the bad node watches the healthy one's job
	worker_bg bad -j 2 --worker bad "$SERVER" -- sh -c 'exit 3'
	local bpid=$WPID
	wait_for_line "$D/bad.err" "5 or more jobs in a row failed here; waiting for jobs running elsewhere"
	kill -0 "$bpid"
	: >"$M/go"
	wait_pid "$bpid" 60
	assert_equal "$status" 1
	grep -q "stopping: the last [0-9]* jobs failed here while jobs succeeded elsewhere; --halt-after 5" \
		"$D/bad.err"
	wait_pid "$hpid" 60
	assert_equal "$status" 0
	wait_server_exit 30
	assert_equal "$status" 0
	grep -q "10 jobs: 10 done, 0 failed" "$SERVER_LOG"
}

@test "--halt-after: when the job elsewhere fails too, the failing node goes on" {
	start_server --fresh "$D"/in/*.txt
	worker_bg other -j 1 --worker other "$SERVER" -- sh -c \
		'if [ ! -e "$M/started" ]; then echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; fi; exit 4'
	local opid=$WPID
	wait_for_file "$M/started"
	worker_bg bad -j 1 --worker bad --halt-after 3 "$SERVER" -- sh -c 'exit 3'
	local bpid=$WPID
	wait_for_line "$D/bad.err" "3 or more jobs in a row failed here; waiting for jobs running elsewhere"
	: >"$M/go"
	wait_pid "$bpid" 60
	assert_equal "$status" 1
	run grep -q "stopping" "$D/bad.err"
	assert_failure
	wait_pid "$opid" 60
	assert_equal "$status" 1
	wait_server_exit 30
	assert_equal "$status" 1
	grep -q "6 jobs: 0 done, 6 failed" "$SERVER_LOG"
}

@test "a server that accepts but never greets: the worker gives up after 10 s, not never" {
	python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$D/mute.sock" 3>&- &
	JQ_PIDS+=("$!")
	local i
	for ((i = 0; i < 100; i++)); do [[ -S $D/mute.sock ]] && break; sleep 0.05; done
	run --separate-stderr timeout -k 5 60 jq-run -j 2 --reconnect 0 --tmpdir "$TMPD" \
		"$D/mute.sock" -- cat
	assert_equal "$status" 6
	[[ $stderr == *"did not answer within 10 s"* ]]
	run --separate-stderr timeout -k 5 60 jq-take -o "$D/x" "$D/mute.sock"
	assert_equal "$status" 6
	[[ $stderr == *"did not answer within 10 s"* ]]
}

@test "a server that speaks another protocol ends a worker's wait at once (exit 7)" {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"); c.close()
' "$D/http.sock" 3>&- &
	JQ_PIDS+=("$!")
	local i
	for ((i = 0; i < 100; i++)); do [[ -S $D/http.sock ]] && break; sleep 0.05; done
	run --separate-stderr timeout -k 5 60 jq-run -j 4 --tmpdir "$TMPD" "$D/http.sock" -- cat
	assert_equal "$status" 7
	assert_equal "$(grep -c 'is not a jq server' <<<"$stderr")" 1
	[[ $stderr != *"waiting for"* ]]
}
