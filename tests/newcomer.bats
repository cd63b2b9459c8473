#!/usr/bin/env bats
# tests/newcomer.bats: leftovers of issue 11's newcomer and adversary passes, where what a user
# reads must say what happens:
#   - an attempt is one lease of a job to a worker: the messages about results that cannot be
#     stored count attempts, and jq-stat shows the same number;
#   - jq-serve listens where -l says, not at $JQ_SERVER, and warns when they differ;
#   - jq-serve --archive does not claim "0 jobs" at start;
#   - an idle --keep server shows no rate, but "idle".
#   - jq-run says once when a server has had no work for it for 5 s.

# shellcheck disable=SC2154 # $output, $stderr and $status are set by bats' run; $line by recv
# shellcheck disable=SC2034 # $greeting is read by hello_line (test_helper/common.bash)

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup root sock worker
}

@test "a result that cannot be stored: 3 attempts in the log, the reason and jq-stat's ATTEMPTS" {
	printf 'a\n' >"$D/in/a"
	mkdir -p "$D/out"
	start_server -v --keep -o "$D/out" "$D/in/a"
	mkdir "$D/out/a.result"
	local id
	for _ in 1 2 3; do
		run -0 timeout 60 jq-take -o "$D/got" "$SERVER"
		id=$output
		run timeout 60 jq-put "$SERVER" "$id" "$D/got"
		assert_equal "$status" 7
	done
	grep -q 'result not stored (1 of 3 attempts); it waits 1000 ms' "$SERVER_LOG"
	grep -q 'result not stored (2 of 3 attempts); it waits 2000 ms' "$SERVER_LOG"
	run -0 jq-stat --list "$SERVER"
	assert_output --regexp '1 +failed +3 +.*cannot store result: .*\(3 attempts\)'
	run -0 jq-stat --list --json "$SERVER"
	assert_output --regexp '"attempts":3,'
}

@test "jq-serve --archive: the start line says jobs are counted as entries are read, not '0 jobs'" {
	printf 'a\n' >"$D/in/a"
	printf 'b\n' >"$D/in/b"
	tar -cf "$D/in.tar" -C "$D/in" a b
	start_server --keep --archive -o "$D/out" "$D/in.tar"
	wait_log "archive $D/in.tar: 2 entries read"
	run -0 grep '^jq-serve: ' "$SERVER_LOG"
	assert_line --index 0 --regexp "^jq-serve: archive $D/in\\.tar: jobs are counted as entries are read, listening on 127\\.0\\.0\\.1:[0-9]+; serving until shut down \\(--keep\\)\$"
	assert_line --index 1 "jq-serve: archive $D/in.tar: 2 entries read"
	refute_output --partial '0 jobs'
}

@test "JQ_SERVER: jq-serve listens where -l says, and warns once when JQ_SERVER names another address" {
	jq_tmpdir >/dev/null
	# another port: one warning naming both; the server still listens where -l says
	JQ_SERVER=127.0.0.1:1 start_server --keep
	run -0 jq-stat "$SERVER"
	run -0 grep -c 'JQ_SERVER' "$SERVER_LOG"
	assert_output 1
	run -0 grep '^jq-serve: JQ_SERVER' "$SERVER_LOG"
	assert_output "jq-serve: JQ_SERVER is 127.0.0.1:1, but this server listens on $SERVER (where -l says; jq-serve does not read JQ_SERVER): clients that use JQ_SERVER will not reach it"
	stop_server
	# not an address at all
	JQ_SERVER='[::1' start_server --keep
	run -0 grep '^jq-serve: JQ_SERVER' "$SERVER_LOG"
	assert_output --partial "JQ_SERVER is not an address ([::1: bad IPv6 address"
	stop_server
	# the server's own socket, however it is spelled: no warning
	local sp
	for sp in "unix:$JQ_TMP/sock" "$JQ_TMP/./sock"; do
		JQ_SERVER=$sp start_server_unix --keep
		run -0 jq-stat "$SERVER"
		run grep -c JQ_SERVER "$SERVER_LOG"
		assert_output 0
		stop_server
	done
	# another UNIX socket: a warning
	JQ_SERVER=unix:$JQ_TMP/other start_server_unix --keep
	run -0 grep -c "^jq-serve: JQ_SERVER is unix:$JQ_TMP/other, but this server listens on unix:$JQ_TMP/sock " "$SERVER_LOG"
	assert_output 1
}

@test "README: the script that waits for the server by its pid ends with its status, also beside a jq-run --keep worker" {
	jq_tmpdir >/dev/null
	local block
	block=$(sed -n '/^    jq-serve \*\.wav & server=\$!$/,/^    wait "\$server"; echo /p' "$BATS_TEST_DIRNAME/../README")
	[[ $(wc -l <<<"$block") == 3 ]] || fail "the README's block is not there: $block"
	# the README's lines, with a real address, inputs and command
	block=${block//server.example/"unix:$JQ_TMP/sock"}
	block=${block//"jq-serve *.wav"/"jq-serve -l unix:$JQ_TMP/sock $D/in/*.wav"}
	block=${block//"-- lame --quiet '<in>' '<out.mp3>'"/-- cat}
	printf 'a\n' >"$D/in/a.wav"
	printf 'b\n' >"$D/in/b.wav"
	# the trap: a jq-run --keep of the same shell never ends, so a bare `wait` would not either
	run --separate-stderr timeout -k 5 60 bash -c "jq-run --keep unix:$JQ_TMP/sock -- cat & keep=\$!
		$block
		kill \$keep; wait \$keep; true" 3>&-
	assert_success
	assert_output "jq-serve exited with status 0"
	assert_equal "$(cat "$D/in/a.wav.result")" a
	assert_equal "$(cat "$D/in/b.wav.result")" b
}

# take_put WANT: take the one job, check its data is WANT and store it as its result
take_put() {
	local id
	run -0 timeout 60 jq-take -o "$D/got" "$SERVER"
	id=$output
	assert_equal "$(cat "$D/got")" "$1"
	run -0 timeout 60 jq-put "$SERVER" "$id" "$D/got"
}

# restart ARG...: shut the server down (status 0) and start it again on the watched directory
restart() {
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 60
	assert_equal "$status" 0
	start_server -v --watch "$D/w" "$@"
	wait_log "watching $D/w: "
}

@test "--watch: a file rewritten after its job is done is not served again, nor after a restart; it is with --fresh, or once its result is removed" {
	mkdir "$D/w"
	printf 'one\n' >"$D/w/a"
	start_server -v --watch "$D/w"
	take_put one
	wait_log "job 1 $D/w/a done"
	printf 'b\n' >"$D/w/b"
	take_put b
	wait_log "job 2 $D/w/b done"
	printf 'two\n' >"$D/w/a"
	wait_log "$D/w/a: written again after job 1 was done; not served again (a name is one job: give a new file a new name, or start jq-serve again with --fresh)"
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"waiting": ?0,'
	# the journal holds the job as done: a restart does not serve it either
	restart
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"waiting": ?0,'
	assert_output --regexp '"done": ?2,'
	assert_equal "$(cat "$D/w/a.result")" one
	# --fresh: the rerun rule serves a (newer than its result), not b
	restart --fresh
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"total": ?1,'
	take_put two
	wait_log "$D/w/a done"
	assert_equal "$(cat "$D/w/a.result")" two
	# its result removed: served again
	printf 'three\n' >"$D/w/a"
	wait_log "$D/w/a: written again after job 1 was done"
	rm "$D/w/a.result"
	restart
	take_put three
	wait_log "$D/w/a done"
	assert_equal "$(cat "$D/w/a.result")" three
	assert_equal "$(cat "$D/w/b.result")" b
}

# stat_line: the first line of the server's STAT reply, by hand (jq-protocol(7)), in $line
stat_line() {
	local greeting
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	recv
	greeting=$line
	sendl "$(hello_line 2)"
	expect 'OK 2*'
	sendl STAT
	expect 'STAT *'
	exec {conn}>&-
}

# add_jobs NAME...: add a job per NAME, its data the name
add_jobs() {
	local n
	for n in "$@"; do
		run -0 jq-put --add -n "$n" "$SERVER" <<<"$n"
	done
}

# take_one: take a job and store its data as its result
take_one() {
	run -0 timeout 60 jq-take -o "$D/got" "$SERVER"
	run -0 timeout 60 jq-put "$SERVER" "$output" "$D/got"
}

@test "jq-stat of an idle --keep server: no rate but 'idle'; the rate's window opens again with the next work" {
	start_server --keep -o "$D/out"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +0/0 \(100%\), 0 running, 0 failed, idle$'
	# a burst: while a job waits, a rate and an ETA
	add_jobs a b
	take_one
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +1/2 \(50%\), 0 running, 0 failed, [0-9.]+ jobs/s, ETA [0-9dhms]+$'
	run -0 jq-stat --json "$SERVER"
	json_file_check <(printf '%s\n' "$output") 'j["progress"]["rate"] > 0' \
		'j["progress"]["idle"] is False' 'isinstance(j["progress"]["eta_s"], int)'
	stat_line
	[[ $line == *' window_finished=1 idle=0'* ]] || fail "STAT: $line"
	# all done: idle, with no rate and no ETA, in text and JSON
	take_one
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +2/2 \(100%\), 0 running, 0 failed, idle$'
	run -0 jq-stat --json "$SERVER"
	json_file_check <(printf '%s\n' "$output") 'j["progress"]["rate"] is None' \
		'j["progress"]["eta_s"] is None' 'j["progress"]["idle"] is True'
	stat_line
	[[ $line == *' window_ms=0 window_finished=0 idle=1'* ]] || fail "STAT: $line"
	# the next burst: its rate counts its own jobs only, not the two before the idle spell
	add_jobs c d
	take_one
	stat_line
	[[ $line == *' window_finished=1 idle=0'* ]] || fail "STAT: $line"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +3/4 \(75%\), 0 running, 0 failed, [0-9.]+ jobs/s, ETA [0-9dhms]+$'
}

@test "jq-run on a --keep server with no work says once that it waits for work there, then runs what comes" {
	start_server --keep -o "$D/out"
	local wpid
	jq_bg jq-run -j 2 --tmpdir "$TMPD" "$SERVER" -- tr a-z A-Z 2>"$D/w.err"
	wpid=${JQ_PIDS[-1]}
	# no job for 5 s: one line for the worker, not one per slot
	wait_for_line "$D/w.err" "waiting for work on $SERVER: it has had none for us for 5 s"
	printf 'abc\n' >"$D/in/a"
	run -0 timeout 60 jq-put -a --wait "$SERVER" "$D/in/a"
	assert_output 'ABC'
	run -0 timeout 60 jq-put --shutdown "$SERVER"
	wait_pid "$wpid" 60
	assert_equal "$status" 0
	run -0 grep -c 'waiting for work on' "$D/w.err"
	assert_output 1
	run -0 grep -c 'attempt run: 1 done' "$D/w.err"
}
