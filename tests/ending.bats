#!/usr/bin/env bats
# The end of a run: jq-serve stays --linger for workers that come late, and
# with --linger 0 leaves as soon as every connected worker has heard
# "finished"; connections close with a FIN after the last reply, never a
# reset; --linger 0 is safe.

# shellcheck disable=SC2154 # $job and $token are set by take_token (test_helper/wire.bash)

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	load test_helper/wire
	jq_setup worker
}

# run_all N ARG...: make N files in $D/in, serve them with jq-serve ARG..., run
# jq-run -j2 -- cat against it; both must exit 0 with every result stored
run_all() {
	local n=$1 f
	shift
	rm -rf "$D/in"
	make_files "$D/in" "$n"
	start_server "$@" "$D"/in/*.dat
	run timeout -k 5 60 jq-run --reconnect 20s --tmpdir "$TMPD" -j 2 "$SERVER" -- cat
	assert_success
	wait_server_exit 30
	assert_equal "$status" 0
	for f in "$D"/in/*.dat; do
		cmp -s "$f" "$f.result" || fail "wrong or missing result for $f"
	done
}

# watch_sees_end SERVER-ARG... -- CMD...: serve two files with jq-serve
# SERVER-ARG... while a jq-stat --watch 0.2 follows the run, run CMD...; the
# watch must exit 0 by itself, its last block saying the run finished, and
# the server exit 0
watch_sees_end() {
	local args=()
	while [[ $1 != -- ]]; do
		args+=("$1")
		shift
	done
	shift
	rm -rf "$D/in" "$D/watch"
	make_files "$D/in" 2
	start_server "${args[@]}" "$D"/in/*.dat
	jq_bg sh -c 'exec jq-stat --watch 0.2 "$1" >"$2"' sh "$SERVER" "$D/watch"
	local watch=$!
	"$@"
	wait_pid "$watch" 30
	assert_equal "$status" 0
	assert_regex "$(grep '^progress ' "$D/watch" | tail -n 1)" '^progress +2/2 \(100%\).*finished$'
	wait_server_exit 30
	assert_equal "$status" 0
}

# run_slow SECS: jq-run -j2 whose jobs take SECS each; it must succeed
run_slow() {
	run timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- sh -c "sleep $1; cat"
	assert_success
}

@test "--linger 0: ten runs of 50 jobs through jq-run -j2 all end with status 0 and every result" {
	local i
	for ((i = 0; i < 10; i++)); do
		run_all 50 --linger 0
		refute_output --partial 'reconnect'
		refute_output --partial 'lost'
	done
}

@test "--linger keeps the server for a worker that starts after the work is done: it hears finished, not a refused connection" {
	make_files "$D/in" 3
	start_server --linger 30s "$D"/in/*.dat
	run timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- cat
	assert_success
	# a late node: with --reconnect 0 a server that had gone would make it exit 6
	run --separate-stderr timeout -k 5 60 jq-run --reconnect 0 --tmpdir "$TMPD" -j 2 "$SERVER" -- cat
	assert_success
	[[ $stderr == *"0 attempts run"* ]]
}

@test "a worker idle at the end, not yet told, is waited for even with --linger 0; finished, then EOF, no reset" {
	local rest rc=0
	printf 'one\n' >"$D/a"
	start_server --no-auth --linger 0 "$D/a"
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	expect 'JQ 2 *'
	sendl 'HELLO 2'
	expect 'OK 2*'
	take_token hold=conn
	{ sendl "PUT $job token=$token"; payload 'res'; } >&"$conn"
	expect "OK $job*"
	# the run has ended; this worker asks again a moment later (as a slot
	# whose TAKE crossed the end does), twice in one write
	sleep 0.5
	_jq_exited "$SERVER_PID" && fail "the server left a worker it had not told"
	send $'TAKE hold=conn\nTAKE hold=conn\n'
	expect 'NOJOB finished*'
	# then at most the second answered the same, and the server's FIN
	while { IFS= read -t 10 -r rest <&"$conn"; } 2>>"$D/read.err"; do
		[[ $rest == 'NOJOB finished'* ]] || fail "after finished: '$rest'"
	done || rc=$?
	assert_equal "$rc" 0
	assert_equal "$rest" ''
	assert_equal "$(cat "$D/read.err")" ''
	exec {conn}<&-
	wait_server_exit 30
	assert_equal "$status" 0
	assert_equal "$(cat "$D/a.result")" res
}

@test "a worker that left untold keeps the server listening for --linger: a worker connecting late hears finished" {
	local h
	make_files "$D/in" 2
	start_server --linger 60s "$D"/in/*.dat
	# jq-take leaves without hearing finished: it may come back
	h=$(jq-take -o "$D/j1" "$SERVER")
	run -0 jq-put "$SERVER" "$h" "$D/j1"
	h=$(jq-take -o "$D/j2" "$SERVER")
	run -0 jq-put "$SERVER" "$h" "$D/j2"
	run -0 timeout -k 5 30 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- cat
	assert_output --partial '0 attempts run'
	_jq_exited "$SERVER_PID" && fail "the server should still linger"
	run -3 jq-take -o "$D/j3" "$SERVER"
	stop_server
}

@test "a run longer than --linger whose workers all came at its start ends without lingering; a worker after that finds no server" {
	make_files "$D/in" 2
	start_server -vv --linger 1s "$D"/in/*.dat
	# each job outlasts the linger: the last worker arrived more than 1 s before the end
	run timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- sh -c 'sleep 1.2; cat'
	assert_success
	wait_server_exit 30
	assert_equal "$status" 0
	run cat "$SERVER_LOG"
	assert_output --partial 'no worker arrived in the last 1000 ms: leaving once every connection has heard the end'
	refute_output --partial 'lingering'
	# the server has gone: a late node with --reconnect 0 cannot reach it
	run timeout -k 5 60 jq-run --reconnect 0 --tmpdir "$TMPD" "$SERVER" -- cat
	assert_equal "$status" 6
}

@test "a worker that arrives while the server lingers stretches the linger for the workers after it; each late worker hears finished" {
	make_files "$D/in" 3
	start_server -vv --linger 5s "$D"/in/*.dat
	run timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- cat
	assert_success
	run --separate-stderr timeout -k 5 60 jq-run --reconnect 0 --tmpdir "$TMPD" -j 1 "$SERVER" -- cat
	assert_success
	[[ $stderr == *"0 attempts run"* ]]
	run --separate-stderr timeout -k 5 60 jq-run --reconnect 0 --tmpdir "$TMPD" -j 1 "$SERVER" -- cat
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	run cat "$SERVER_LOG"
	assert_output --partial 'lingering'
	assert_equal "$(grep -c 'a worker arrived after the end: lingering' "$SERVER_LOG")" 2
}

@test "jq-stat --watch sees the end of a run that does not linger" {
	watch_sees_end --linger 1s -- run_slow 1.2
}

@test "a client that connected during the linger and asks only after it is over still hears finished, not a closed connection" {
	printf 'one\n' >"$D/a"
	start_server --no-auth --linger 2s "$D/a"
	local id
	id=$(JQ_NO_AUTH=1 jq-take -o "$D/x" "$SERVER")
	JQ_NO_AUTH=1 jq-put "$SERVER" "$id" "$D/x"
	# the run has ended; a worker connects and greets within the linger...
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	expect 'JQ 2 *'
	sendl 'HELLO 2'
	expect 'OK 2*'
	# ...and its TAKE comes after the linger is over (a slow link)
	sleep 2.5
	sendl 'TAKE'
	expect 'NOJOB finished*'
	exec {conn}<&-
	wait_server_exit 30
	assert_equal "$status" 0
}

@test "--linger 0: a jq-stat --watch still sees the end of the run" {
	watch_sees_end --linger 0 -- run_slow 0.5
}

@test "a run that ends just before its linger runs out: a jq-stat --watch still sees the end, three times over" {
	local i
	# the last worker asked at the start; the end comes a moment before
	# --linger has passed since, so the linger that is left is shorter
	# than the watch's interval: the server must not cut the watch off
	for ((i = 0; i < 3; i++)); do
		watch_sees_end --linger 700ms -- run_slow 0.62
	done
}
