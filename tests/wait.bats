#!/usr/bin/env bats
# tests/wait.bats: waiting for a result (issue 11).  jq-put --add --wait and jq-put --wait ID
# write a job's result to standard output byte for byte, or tell its failure and exit 1; many
# may wait for one job; a waiting caller survives kill -9 and a restart of its server, even in
# the middle of its result, and a shutdown followed by a restart.  The protocol's WAIT by hand,
# and a stored result that changed is refused rather than sent.  See jq-put(1), --wait, and
# jq-protocol(7), WAIT.
#
# Nothing here depends on timing: a waiter is known to wait when the server's log says so, a job
# holds on until a mark file appears, and a reader that stops half-way blocks jq-put where it is.

# shellcheck disable=SC2154,SC2034 # $output, $stderr, $status, $line: bats, wire.bash; $greeting: hello_line

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock worker bytes
	mkdir -p "$D/out"
	export D
}

# serve [ARG]...: a --keep server with results in $D/out, on a UNIX socket whose path stays the
# same across restarts (so waiting clients find the next server there)
serve() {
	start_server -v --keep -o "$D/out" -l "unix:$JQ_TMP/s" "$@"
}

# serve_pid: the jq-serve process itself (SERVER_PID is its watchdog's)
serve_pid() {
	pgrep -P "$SERVER_PID" -x jq-serve
}

# kill_server: kill -9 the server and reap it
kill_server() {
	kill -KILL "$(serve_pid)"
	wait_server_exit 30
}

# waiter OUT ARG...: jq-put --wait ARG... in the background, its result to OUT, its stderr to
# OUT.err; its pid in $!
waiter() {
	local out=$1
	shift
	jq_bg sh -c 'out=$1; shift; exec jq-put --wait "$@" >"$out" 2>"$out.err"' waiter "$out" "$@"
}

@test "wait: --add --wait writes the result byte for byte: 3 MiB of binary data with NUL bytes, to a file and through a pipe" {
	serve
	head -c 3145728 /dev/urandom >"$D/in/big"
	printf '\0\0tail\0' >>"$D/in/big"
	jq_bg jq-run -j 2 --tmpdir "$TMPD" "$SERVER" -- cat
	jq-put --add --wait "$SERVER" "$D/in/big" >"$D/got"
	cmp "$D/in/big" "$D/got"
	cmp "$D/in/big" "$D/out/big.result"
	# from standard input, named, through a pipe
	jq-put --add --wait --name piped "$SERVER" <"$D/in/big" | cat >"$D/got2"
	assert_equal "${PIPESTATUS[0]}" 0
	cmp "$D/in/big" "$D/got2"
	# an empty job has an empty result
	jq-put --add --wait --name empty "$SERVER" </dev/null >"$D/got3"
	assert_file_empty "$D/got3"
	# --if-new on a name that is done: its result, at once, and nothing added
	jq-put --add --wait --if-new --name piped "$SERVER" </dev/null >"$D/got4"
	cmp "$D/in/big" "$D/got4"
	run -0 jq-stat --json "$SERVER"
	assert_output --partial '"total":3'
}

@test "wait: jq-put --wait ID (or --name NAME) waits for a job added before; a job done answers at once" {
	serve
	run -0 jq-put --add "$SERVER" --name one <<<'first'
	assert_output 1
	waiter "$D/w1" "$SERVER" 1
	local w1=$!
	waiter "$D/w2" --name one "$SERVER"
	local w2=$!
	wait_log_re 'job 1 one: .* waits for its end' 2
	_jq_exited "$w1" && fail "jq-put --wait ended before its job ran"
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	wait_pid "$w1" 30
	assert_equal "$status" 0
	wait_pid "$w2" 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/w1")" FIRST
	assert_equal "$(cat "$D/w2")" FIRST
	assert_file_empty "$D/w1.err"
	# done: answered at once, by id, by a handle's id, by name
	run -0 jq-put --wait "$SERVER" 1
	assert_output FIRST
	run -0 jq-put --wait "$SERVER" 1:0123456789abcdef0123456789abcdef
	assert_output FIRST
	run -0 jq-put --wait --name one "$SERVER"
	assert_output FIRST
	# JQ_SERVER and a lone ID
	JQ_SERVER=$SERVER run -0 jq-put --wait 1
	assert_output FIRST
	# no such job: refused (4)
	run --separate-stderr -4 jq-put --wait "$SERVER" 9
	[[ $stderr == *'no job with id "9"'* ]] || fail "stderr: $stderr"
	run -4 jq-put --wait --name nosuch "$SERVER"
}

@test "wait: several waiters on one job each get the whole result" {
	serve
	head -c 1048576 /dev/urandom >"$D/in/data"
	run -0 jq-put --add "$SERVER" "$D/in/data"
	local pids=() i
	for i in 1 2 3 4 5; do
		waiter "$D/w$i" "$SERVER" 1
		pids+=("$!")
	done
	wait_log_re 'job 1 data: .* waits for its end' 5
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	for i in 1 2 3 4 5; do
		wait_pid "${pids[i - 1]}" 30
		assert_equal "$status" 0
		cmp "$D/in/data" "$D/w$i"
	done
}

@test "wait: a job that fails for good: its status and stderr tail on stderr, nothing on stdout, exit 1" {
	serve --retries 0
	jq_bg jq-run -j 1 --halt-after 0 --tmpdir "$TMPD" "$SERVER" -- \
		sh -c 'echo "first line" >&2; printf "bad \033[31mred\n" >&2; exit 3'
	run --separate-stderr -1 jq-put --add --wait --name doomed "$SERVER" <<<'x'
	assert_output ''
	[[ $stderr == *'jq-put: job 1 failed (exit 3): doomed'* ]] || fail "stderr: $stderr"
	[[ $stderr == *$'\nfirst line\n'* ]] || fail "stderr: $stderr"
	# a terminal escape in the message is shown, not sent
	[[ $stderr == *'bad \x1b[31mred'* && $stderr != *$'\033'* ]] || fail "stderr: $stderr"
	# later, the same at once; a stdout that is a file stays empty
	run --separate-stderr -1 jq-put --wait "$SERVER" 1
	[[ $stderr == *'job 1 failed (exit 3): doomed'* ]] || fail "stderr: $stderr"
	jq-put --wait "$SERVER" 1 >"$D/got" 2>/dev/null || assert_equal "$?" 1
	assert_file_empty "$D/got"
}

@test "wait: kill -9 of the server while clients wait for a running and a waiting job; the same command line restarted, both get their results" {
	serve
	run -0 jq-put --add "$SERVER" --name run <<<'running'
	run -0 jq-put --add "$SERVER" --name wait <<<'waiting'
	# a worker holds job 1 until $M/go appears, and runs on while the server is away
	jq_bg jq-run -j 1 --max-jobs 1 --tmpdir "$TMPD" "$SERVER" -- \
		sh -c 'echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; tr a-z A-Z'
	local run_pid=$!
	wait_for_file "$M/started"
	waiter "$D/w1" "$SERVER" 1
	local w1=$!
	waiter "$D/w2" "$SERVER" 2
	local w2=$!
	wait_log_re 'waits for its end' 2
	kill_server
	serve
	touch "$M/go"
	wait_pid "$run_pid" 60
	assert_equal "$status" 0
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z
	wait_pid "$w1" 60
	assert_equal "$status" 0
	wait_pid "$w2" 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/w1")" RUNNING
	assert_equal "$(cat "$D/w2")" WAITING
	grep -q 'reconnecting' "$D/w1.err"
	grep -q 'reconnected' "$D/w2.err"
}

@test "wait: kill -9 in the middle of a result being sent; after the restart the part written is checked and skipped, and the output is whole" {
	serve
	head -c 16777216 /dev/urandom >"$D/in/big"
	run -0 jq-put --add "$SERVER" "$D/in/big"
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	# a reader that takes 1 MiB, then stops until $D/go: jq-put blocks in the middle
	slow_reader() {
		set -o pipefail
		jq-put --wait "$SERVER" 1 2>"$D/wait.err" | {
			dd of="$D/part1" bs=1M count=1 iflag=fullblock 2>/dev/null
			echo x >"$D/read1"
			while [ ! -e "$D/go" ]; do sleep 0.05; done
			cat >"$D/part2"
		}
	}
	jq_bg slow_reader
	local reader=$!
	wait_for_file "$D/read1"
	kill_server
	serve
	touch "$D/go"
	wait_pid "$reader" 60
	assert_equal "$status" 0
	cat "$D/part1" "$D/part2" | cmp - "$D/in/big"
	grep -q 'reconnecting' "$D/wait.err"
}

@test "wait: a shutdown before the job ran: jq-put waits for the next server, which the same command line starts; --reconnect 0 gives up (6)" {
	serve
	run -0 jq-put --add "$SERVER" --name later <<<'later'
	waiter "$D/w1" "$SERVER" 1
	local w1=$!
	waiter "$D/w0" --reconnect 0 "$SERVER" 1
	local w0=$!
	wait_log_re 'job 1 later: .* waits for its end' 2
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	wait_pid "$w0" 30
	assert_equal "$status" 6
	grep -q 'shutting down before job 1 has ended' "$D/w0.err"
	serve
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	wait_pid "$w1" 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/w1")" later
}

@test "wait: a server that keeps answering that it shuts down (a long --linger) is given up on after --reconnect (6)" {
	serve --linger 120
	run -0 jq-put --add "$SERVER" --name never <<<'never'
	waiter "$D/w" --reconnect 1 "$SERVER" 1
	local w=$!
	wait_log_re 'job 1 never: .* waits for its end'
	run -0 jq-put --shutdown "$SERVER"
	wait_pid "$w" 60
	assert_equal "$status" 6
	grep -qF 'shutting down before job 1 has ended (CLOSED); gave up waiting for the server' "$D/w.err"
	_jq_exited "$SERVER_PID" && fail "the server should still linger"
	true
}

@test "wait: a stored result that changed since is not sent: truncated, replaced by a link (exit 7, nothing on stdout)" {
	serve
	run -0 jq-put --add "$SERVER" --name r <<<'result'
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	run -0 jq-put --wait "$SERVER" 1
	assert_output result
	printf 'res' >"$D/out/r.result"
	run --separate-stderr -7 jq-put --wait "$SERVER" 1
	assert_output ''
	[[ $stderr == *'holds 3 bytes, 7 when stored'* ]] || fail "stderr: $stderr"
	rm "$D/out/r.result"
	ln -s /etc/passwd "$D/out/r.result"
	run --separate-stderr -7 jq-put --wait "$SERVER" 1
	assert_output ''
	[[ $stderr == *'symbolic link'* ]] || fail "stderr: $stderr"
}

@test "wait: the protocol by hand: WAITING, then RESULT and its payload; requests after a WAIT wait for its answer; FAILED; errors; a waiter that leaves is forgotten" {
	start_server -v --keep -o "$D/out"
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2 name=by-hand)"
	expect 'OK 2*'
	sendl 'WAIT 9'
	expect 'ERR NOSUCHJOB *'
	sendl 'WAIT 0'
	expect 'ERR PROTO *'
	sendl 'WAIT 1 name=%00'
	expect 'ERR PROTO *'
	sendl 'WAIT x'
	expect 'ERR PROTO *'
	run -0 jq-put --add "$SERVER" --name 'p q' <<<'payload'
	sendl 'WAIT 0 name=p%20q' 'QUIT'
	expect 'WAITING 1 p%20q state=waiting'
	# a second connection waits for the same job, then leaves
	exec {other}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	local saved=$conn
	conn=$other
	recv
	greeting=$line
	sendl "$(hello_line 2 name=leaver)"
	expect 'OK 2*'
	sendl 'WAIT 1'
	expect 'WAITING 1 p%20q state=waiting'
	exec {other}>&-
	conn=$saved
	run -0 jq-run --max-jobs 1 -j 1 --tmpdir "$TMPD" "$SERVER" -- cat
	expect 'RESULT 1 p%20q size=8'
	local n data
	expect 'DATA 8'
	IFS= read -t 20 -r -N 8 data <&"$conn"
	assert_equal "$data" $'payload\n'
	expect "END 8 $(printf 'payload\n' | crc32c)"
	# QUIT was read only after the answer
	expect 'OK bye'
	# a cancelled job: FAILED, its status and message encoded
	run -0 jq-put --add "$SERVER" --name c <<<'c'
	run -0 jq-put --cancel "$SERVER" 2
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2 name=by-hand)"
	expect 'OK 2*'
	sendl 'WAIT 2'
	expect 'FAILED 2 c status=cancelled msg=cancelled%20by%20*'
	sendl 'STAT'
	expect 'STAT *'
	grep -q 'job 1 p q: leaver waits for its end' "$SERVER_LOG"
}
